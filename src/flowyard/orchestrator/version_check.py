"""Every API request's ``Flowyard-API-Version`` is checked at the door, and every answer
carries the server's (``flowyard.api_version`` says which clients are served)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowyard.api_version import API_VERSION, HEADER, VersionRefused, check_client
from flowyard.orchestrator.limits import answer_json

_HEADER = HEADER.lower().encode("latin-1")
_OURS = (_HEADER, API_VERSION.encode("latin-1"))


class ApiVersionMiddleware:
    """Refuses a client whose API version this server does not serve (426 or 400, with
    what to upgrade); stamps the server's version on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), _OURS]
            await send(message)

        sent = [value for name, value in scope["headers"] if name == _HEADER]
        if sent:
            try:
                check_client(sent[0].decode("latin-1"))
            except VersionRefused as refused:
                await answer_json(stamped, refused.status, {"detail": str(refused)})
                return
        await self.app(scope, receive, stamped)
