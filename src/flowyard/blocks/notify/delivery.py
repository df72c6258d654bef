"""Delivering one HTTP request to a notification service: retries, and errors without secrets.

Transient answers (5xx, 408, 429) and transport failures are retried with exponential
waits, at most ``ATTEMPTS`` times and ``TOTAL_SECONDS`` in all; any other error status is
final at once. Either way the error names the service, where it answered (host and port,
never the path, which often holds the token) and its status; anything it quotes from the
answer is scrubbed of the block's secrets first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
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
T = TypeVar("T")

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


class Transient(Exception):
    """Raised by one attempt that may succeed if tried again (``status``: the answer's)."""

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


def with_retries(
    service: str,
    target: str,
    attempt: Callable[[], T],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``attempt()`` under the delivery policy: while it raises Transient, again after
    0.25 s, 0.5 s, 1 s… (at most ``ATTEMPTS`` tries and ``TOTAL_SECONDS``); then
    NotificationError saying ``target`` (e.g. ``Slack at host:port``), what went wrong last
    and how many attempts were made."""
    retrying = Retrying(
        stop=stop_after_attempt(ATTEMPTS) | stop_after_delay(TOTAL_SECONDS),
        wait=wait_exponential(multiplier=FIRST_WAIT_SECONDS, max=MAX_WAIT_SECONDS),
        retry=retry_if_exception_type(Transient),
        before_sleep=lambda state: _log_retry(service, state),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except Transient as exc:
        attempts = retrying.statistics.get("attempt_number", ATTEMPTS)
        message = f"{target} {exc.detail} after {attempts} attempts"
        raise NotificationError(service, exc.status, message) from None


def deliver(service: str, request: HttpRequest, *, secrets: Iterable[str]) -> httpx.Response:
    """Send ``request``, retrying transient failures; NotificationError when it never lands."""
    secrets = list(secrets)
    target = f"{service} at {where(request.url)}"
    with httpx.Client(timeout=REQUEST_TIMEOUT_SECONDS, follow_redirects=False) as client:
        response = with_retries(
            service, target, lambda: _attempt(client, service, target, request, secrets)
        )
    log.info("notification_sent", service=service, status=response.status_code)
    return response


def _attempt(
    client: httpx.Client, service: str, target: str, request: HttpRequest, secrets: list[str]
) -> httpx.Response:
    try:
        response = client.request(
            request.method, request.url, json=request.json, headers=dict(request.headers)
        )
    except httpx.TransportError as exc:
        reason = redact(str(exc) or type(exc).__name__, secrets)
        raise Transient(None, f"could not be reached ({type(exc).__name__}: {reason})") from None
    status = response.status_code
    if status < 400:
        return response
    detail = f"answered {status}{_excerpt(response, secrets)}"
    if is_transient_status(status):
        raise Transient(status, detail)
    raise NotificationError(service, status, f"{target} {detail}")


def _excerpt(response: httpx.Response, secrets: list[str]) -> str:
    text = response.text.strip().replace("\n", " ")[:EXCERPT_CHARS]
    return f": {redact(text, secrets)}" if text else ""


def _log_retry(service: str, state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    status = exc.status if isinstance(exc, Transient) else None
    log.warning("notification_retry", service=service, attempt=state.attempt_number, status=status)
