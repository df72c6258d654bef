"""Delivering one HTTP request to a notification service: retries, and errors without secrets.

Transient answers (5xx, 408, 429) and transport failures are retried with exponential
waits, at most ``ATTEMPTS`` times and ``TOTAL_SECONDS`` in all; any other error status is
final at once. Either way the error names the service, where it answered (host and port,
never the path, which often holds the token) and its status; anything it quotes from the
answer is scrubbed of the block's secrets first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
)

from flowyard.errors import NotificationError

log = structlog.get_logger()

ATTEMPTS = 4
TOTAL_SECONDS = 30.0
REQUEST_TIMEOUT_SECONDS = 10.0
FIRST_WAIT_SECONDS = 0.25
MAX_WAIT_SECONDS = 4.0
EXCERPT_CHARS = 200
MASK = "********"


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    json: Any
    headers: Mapping[str, str] = field(default_factory=dict)


class _Transient(Exception):
    """One attempt that may succeed if tried again."""

    def __init__(self, status: int | None, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def is_transient_status(status: int) -> bool:
    """Whether an HTTP answer is worth trying again: the service's fault or its rate limit."""
    return status >= 500 or status in (408, 429)


def where(url: str) -> str:
    """``host:port`` of a URL: enough to tell which service answered, no token in it."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, and every path segment or query of a secret URL, masked."""
    pieces: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        pieces.add(secret)
        parts = urlsplit(secret)
        if parts.scheme and parts.netloc:
            pieces.update(p for p in parts.path.split("/") if len(p) >= 6)
            pieces.update(p for p in (parts.query, parts.password or "") if p)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, MASK)
    return text


def deliver(service: str, request: HttpRequest, *, secrets: Iterable[str]) -> httpx.Response:
    """Send ``request``, retrying transient failures; NotificationError when it never lands."""
    secrets = list(secrets)
    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(TOTAL_SECONDS),
        wait=wait_exponential(multiplier=FIRST_WAIT_SECONDS, max=MAX_WAIT_SECONDS),
        retry=retry_if_exception_type(_Transient),
        before_sleep=lambda state: _log_retry(service, state),
        reraise=True,
    )
    with httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS, follow_redirects=False) as client:
        try:
            response: httpx.Response = retrying(_attempt, client, service, request, secrets)
        except _Transient as exc:
            attempts = retrying.statistics.get("attempt_number", ATTEMPTS)
            message = f"{service} at {where(request.url)} {exc.detail} after {attempts} attempts"
            raise NotificationError(service, exc.status, message) from None
    log.info("notification_sent", service=service, status=response.status_code)
    return response


def _attempt(
    client: httpx.Client, service: str, request: HttpRequest, secrets: list[str]
) -> httpx.Response:
    try:
        response = client.request(
            request.method, request.url, json=request.json, headers=dict(request.headers)
        )
    except httpx.TransportError as exc:
        reason = redact(str(exc) or type(exc).__name__, secrets)
        raise _Transient(None, f"could not be reached ({type(exc).__name__}: {reason})") from None
    status = response.status_code
    if status < 400:
        return response
    detail = f"answered {status}{_excerpt(response, secrets)}"
    if is_transient_status(status):
        raise _Transient(status, detail)
    raise NotificationError(service, status, f"{service} at {where(request.url)} {detail}")


def _excerpt(response: httpx.Response, secrets: list[str]) -> str:
    text = response.text.strip().replace("\n", " ")[:EXCERPT_CHARS]
    return f": {redact(text, secrets)}" if text else ""


def _log_retry(service: str, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    status = exc.status if isinstance(exc, _Transient) else None
    log.warning("notification_retry", service=service, attempt=state.attempt_number, status=status)
