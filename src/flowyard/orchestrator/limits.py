"""Bounds on what a request may bring, enforced at the door before any route sees it.

A body larger than ``max_request_bytes`` is refused with 413 while it streams in (with or
without a Content-Length), so no request can make the server hold more than that. A JSON
body is then parsed once in a thread, off the event loop, and refused with 422 when it is
nested deeper than ``max_body_depth``, holds a number that is not finite (``NaN``), or a
string that is not valid Unicode (a lone surrogate escape). Heartbeats and claims keep being
answered meanwhile. Field-level bounds (depth of a parameters document, string lengths,
integer ranges) are declared on the request documents in :mod:`flowyard.schemas`.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowyard.settings import Settings

# a surrogate escape (\uD800-\uDFFF): only then can a body hold a lone surrogate
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
INLINE_BYTES = 16 * 1024  # smaller JSON bodies are checked on the event loop (microseconds)
NUL_REFUSED = "contains the character U+0000, which is not allowed"


class BodyRefused(Exception):
    """Raised when a JSON body breaks one of the door's bounds; the message says which,
    ``where`` the top-level member (field name or item index) that holds the fault."""

    def __init__(self, message: str, where: str | int | None = None) -> None:
        super().__init__(message)
        self.where = where


def inspect_json(body: bytes, max_depth: int) -> None:
    """Raise :class:`BodyRefused` when ``body`` is JSON that breaks a bound.

    Malformed JSON passes: the route's own parsing answers it (400)."""
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise BodyRefused(_too_deep(max_depth)) from None
    except BodyRefused:
        raise
    except ValueError:
        return
    check_surrogates = _SURROGATE_ESCAPE.search(body) is not None
    _walk(document, max_depth, check_surrogates)


def _refuse_constant(name: str) -> Any:
    raise BodyRefused(f"{name} is not a number JSON allows")


def _too_deep(max_depth: int) -> str:
    return f"the request body nests deeper than {max_depth} levels (FLOWYARD_MAX_BODY_DEPTH)"


def _walk(document: Any, max_depth: int, check_surrogates: bool) -> None:
    """Depth-first over containers only (iteratively: no recursion limit to hit)."""
    stack: list[tuple[Any, int, str | int | None]] = [(document, 1, None)]
    while stack:
        node, depth, where = stack.pop()
        if isinstance(node, dict):
            pairs: Any = node.items()
            if check_surrogates:
                _unicode(node.keys(), where)
        elif isinstance(node, list):
            pairs = enumerate(node)
        else:
            continue
        if depth > max_depth:
            raise BodyRefused(_too_deep(max_depth), where)
        for key, item in pairs:
            if isinstance(item, dict | list):
                stack.append((item, depth + 1, key if where is None else where))
            elif check_surrogates and isinstance(item, str):
                _unicode((item,), key if where is None else where)
    if check_surrogates and isinstance(document, str):
        _unicode((document,), None)


def _unicode(texts: Any, where: str | int | None) -> None:
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            message = "a string is not valid Unicode (a lone surrogate)"
            raise BodyRefused(message, where) from None


class LimitsMiddleware:
    """ASGI middleware: bounded body (413), then the JSON checks (422), then the app."""

    def __init__(self, app: ASGIApp, limits: Settings) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = _nul_in_url(scope)
        if where:  # PostgreSQL refuses NUL in any string: no lookup may carry one
            error = {"loc": [where], "msg": NUL_REFUSED, "type": "value_error"}
            await answer_json(send, 422, {"detail": [error]})
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limits.max_request_bytes:
            await self._too_large(send)
            return
        body = await self._read(receive)
        if body is None:
            await self._too_large(send)
            return
        if body and _is_json(scope):
            try:
                if len(body) <= INLINE_BYTES:  # heartbeats, claims: not worth a thread hop
                    inspect_json(body, self.limits.max_body_depth)
                else:
                    await asyncio.to_thread(inspect_json, body, self.limits.max_body_depth)
            except BodyRefused as exc:
                await answer_json(send, 422, {"detail": [_body_error(exc)]})
                return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it outgrows the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away; the app sees an empty body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_request_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    async def _too_large(self, send: Send) -> None:
        limit = self.limits.max_request_bytes
        detail = f"the request body is larger than {limit} bytes (FLOWYARD_MAX_REQUEST_BYTES)"
        await answer_json(send, 413, {"detail": detail}, close=True)


def _nul_in_url(scope: Scope) -> str | None:
    """``path`` or ``query`` when that part of the URL holds a NUL character."""
    if "\x00" in scope["path"]:
        return "path"
    query = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        return "query"
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _is_json(scope: Scope) -> bool:
    """JSON, or no content type at all (the routes read such bodies as JSON too)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";")[0].strip().lower()
            return bool(media == b"application/json" or media.endswith(b"+json"))
    return True


def _body_error(exc: BodyRefused) -> dict[str, Any]:
    loc: list[str | int] = ["body"] if exc.where is None else ["body", exc.where]
    return {"loc": loc, "msg": str(exc), "type": "value_error"}


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then waits for a disconnect."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def answer_json(
    send: Send, status: int, content: dict[str, Any], close: bool = False
) -> None:
    """Answer a request at the door (before any route) with a JSON document."""
    payload = json.dumps(content).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    if close:  # the rest of an oversized body is not read: do not reuse the connection
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
