"""``ApiTransport``: requests to the API as JSON, errors translated, retried by policy.

The base of ``FlowyardClient``, and on its own what a command that only reads needs: it
returns the API's JSON as it came (``get``), so that listing commands import neither
pydantic nor the API documents. httpx errors are translated here, at the boundary, into
``ApiError`` / ``ApiUnavailable``; what is retried, and when a request may be sent again,
``retries`` decides.
"""

from __future__ import annotations

import random
import time
from collections.abc import Generator
from typing import Any, Protocol, Self
from urllib.parse import quote

import httpx

from flowyard.api_settings import DEFAULT_MAX_REQUEST_BYTES
from flowyard.api_version import API_VERSION, HEADER
from flowyard.client.retries import IDEMPOTENCY_KEY, IDEMPOTENT_METHODS, STANDARD, RetryPolicy
from flowyard.errors import ApiError, ApiUnavailable, InvalidInput


class ApiSettingsLike(Protocol):
    """What a client is built from: ``Settings``, or ``api_settings.ApiSettings``."""

    @property
    def api_url(self) -> str: ...
    @property
    def api_key(self) -> str | None: ...
    @property
    def max_request_bytes(self) -> int: ...


def api_path(*parts: str) -> str:
    """``/api/<part>/<part>…``, each part quoted (a name may hold ``/`` or spaces)."""
    return "/api/" + "/".join(quote(p, safe="") for p in parts)


class _Bearer(httpx.Auth):
    """A bearer credential that can be renewed in place."""

    def __init__(self, key: str) -> None:
        self.key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.key}"
        yield request


_BEARERS: dict[str, _Bearer] = {}


def _bearer(key: str) -> _Bearer:
    """The process's one credential for ``key``: the clients an engine makes (its own, the
    SDK's, a block's) all follow its run token's renewals."""
    return _BEARERS.setdefault(key, _Bearer(key))


class ApiTransport:
    """Sends requests to the API at ``api_url``; ``retry`` is the policy for transient
    failures (``retry_seconds``, when given, bounds its time instead: 0 is one attempt).

    ``max_request_bytes`` is the API's body limit as this client knows it (the setting
    ``FLOWYARD_MAX_REQUEST_BYTES``): the batches of logs and task-run records stay under it.
    """

    def __init__(
        self,
        api_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy = STANDARD,
        retry_seconds: float | None = None,
        max_request_bytes: int | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._bearer = _bearer(api_key) if api_key else None
        self._http = httpx.Client(
            base_url=self.api_url,
            auth=self._bearer,
            timeout=timeout,
            verify=_tls(self.api_url),
            headers={HEADER: API_VERSION},  # the server says so if it does not serve us
        )
        self.retry = retry
        self.retry_seconds = retry.seconds if retry_seconds is None else retry_seconds
        self.max_request_bytes = max_request_bytes or DEFAULT_MAX_REQUEST_BYTES

    @classmethod
    def from_settings(cls, settings: ApiSettingsLike, **kwargs: Any) -> Self:
        """A client of the API ``settings`` name, with their key and body limit."""
        kwargs.setdefault("max_request_bytes", settings.max_request_bytes)
        return cls(settings.api_url, settings.api_key, **kwargs)

    @property
    def api_key(self) -> str | None:
        return self._bearer.key if self._bearer else None

    def renew_key(self, key: str) -> None:
        """Use ``key`` from now on, in every client of this process made with the same key
        (an engine's run token, renewed by its heartbeat)."""
        if self._bearer is not None:
            self._bearer.key = key

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, *parts: str, **params: Any) -> Any:
        """``GET /api/<parts>`` with ``params`` (None left out): the API's JSON as it came."""
        query = {name: value for name, value in params.items() if value is not None}
        return self.request("GET", api_path(*parts), params=query)

    def request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        idempotent: bool = False,
        **kw: Any,
    ) -> Any:
        """Send one request; returns the decoded JSON body. A transient failure is retried
        as the policy says, and sent again only when ``retries.may_replay`` allows:
        ``idempotent`` marks a POST or PATCH that may be (GET, PUT, DELETE and requests
        with an ``Idempotency-Key`` header are).

        A plain loop, not tenacity: importing tenacity (asyncio with it) would cost every
        CLI command 10-20 ms, and the decisions are ``RetryPolicy``'s, pure and tested."""
        idempotent = idempotent or method in IDEMPOTENT_METHODS
        idempotent = idempotent or IDEMPOTENCY_KEY in (kw.get("headers") or {})
        deadline = time.monotonic() + self.retry_seconds
        wait = self.retry.first_wait
        while True:
            try:
                return self._send(method, path, timeout=timeout, **kw)
            except ApiError as exc:
                pause = min(wait * (1 + random.random()), self.retry.max_wait)  # jittered
                late = time.monotonic() + pause > deadline
                if late or not self.retry.retries(exc, idempotent=idempotent):
                    raise
            time.sleep(pause)
            wait *= 2

    def _send(self, method: str, path: str, *, timeout: float | None, **kw: Any) -> Any:
        if timeout is not None:
            kw["timeout"] = timeout
        try:
            response = self._http.request(method, path, **kw)
        except httpx.InvalidURL as exc:  # e.g. a name of 100,000 characters: nothing sent
            raise InvalidInput(f"cannot send {method} {path[:60]}...: {exc}") from exc
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            if _refused(exc):
                raise ApiUnavailable(
                    f"cannot reach the Flowyard API at {self.api_url} (connection refused)"
                    " — start it with: flowyard server start",
                    refused=True,
                ) from exc
            raise ApiUnavailable(f"cannot reach the Flowyard API at {self.api_url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise ApiError(0, f"the Flowyard API at {self.api_url} timed out") from exc
        except httpx.TransportError as exc:  # the connection broke: reset, cut off mid-answer
            raise ApiUnavailable(
                f"lost the connection to the Flowyard API at {self.api_url}: {exc}"
            ) from exc
        if response.status_code >= 400:
            raise ApiError(response.status_code, _error_message(response))
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _refused(exc: BaseException) -> bool:
    """True when ``exc`` or an error it came from is a refused connection."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _tls(api_url: str) -> bool:
    """Verify certificates for an https API; plain http has no TLS to set up.

    httpx builds an SSL context (loading the CA bundle, ~40 ms of CPU) for every client
    unless told not to, and every flow run's engine makes one.
    """
    return api_url.startswith("https:")


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail:
        return "; ".join(_validation_error(error) for error in detail)
    if detail:
        return str(detail)
    return f"HTTP {response.status_code} from {response.request.url.path}"


def _validation_error(error: object) -> str:
    """One entry of a 422's list as ``field: message`` (``parameters: nested deeper ...``)."""
    if not isinstance(error, dict):
        return str(error)
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
