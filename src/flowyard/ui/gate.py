"""The web UI's door when the server requires API keys: a session cookie identifies the
caller, both for the UI's own pages and for the JSON API routes its JavaScript calls.

It runs before ``api_keys.install_auth``'s key check and sets ``request.state.api_key``
from the session, so ``authority.guard`` decides every request in one place: a viewer's
POST to the API is refused by the API, whatever the page shows. A request carrying an
``Authorization`` header is left to the key check (a key wins over a cookie).

- A ``/ui/`` page without a live session goes to the sign-in form (303), any other
  ``/ui/`` request gets 401; only the sign-in form and the static files are open.
- A request authenticated by the cookie that changes something (not GET/HEAD/OPTIONS) must
  carry the session's CSRF token in ``X-CSRF-Token``, else 403. (The cookie is
  SameSite=Strict as well; the token is the second lock.)
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from flowyard.errors import QueueUnavailable
from flowyard.orchestrator.api.api_keys import PROTECTED
from flowyard.settings import Settings
from flowyard.ui.sessions import COOKIE, SessionStore, caller

OPEN = ("/ui/sign-in", "/ui/static/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
CSRF_HEADER = "x-csrf-token"
NO_CSRF = "this request was authenticated by a session cookie but lacks its X-CSRF-Token header"


def store_of(app: FastAPI, settings: Settings) -> SessionStore:
    return SessionStore(app.state.redis, settings.ui_session_seconds)


class SessionGate:
    """ASGI middleware: see the module's docstring."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.admin_key = settings.api_key or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        headers = Headers(scope=scope)
        is_ui = path.startswith("/ui/") and not path.startswith(OPEN)
        is_api = path.startswith(PROTECTED)
        if not (is_ui or is_api) or (is_api and "authorization" in headers):
            return await self.app(scope, receive, send)
        session_id = cookie_parser(headers.get("cookie", "")).get(COOKIE, "")
        try:
            response = await self._identify(scope, headers, session_id, is_ui)
        except QueueUnavailable:
            response = JSONResponse({"detail": "sessions are unavailable (Redis)"}, 503)
        if response is not None:
            return await response(scope, receive, send)
        await self.app(scope, receive, send)

    async def _identify(
        self, scope: Scope, headers: Headers, session_id: str, is_ui: bool
    ) -> Response | None:
        """Put the session's caller on the request (None), or answer for it."""
        app: FastAPI = scope["app"]
        found = await store_of(app, self.settings).find(session_id) if session_id else None
        info = None
        if found is not None:
            info = await caller(app.state.orchestrator, found, self.admin_key)
        if info is None or found is None:
            return signed_out(scope, bool(session_id)) if is_ui else None  # the key check: 401
        if scope["method"] not in SAFE_METHODS and not found.csrf_matches(headers.get(CSRF_HEADER)):
            return JSONResponse({"detail": NO_CSRF}, status_code=403)
        state = scope.setdefault("state", {})
        state["api_key"], state["ui_session"], state["ui_session_id"] = info, found, session_id
        return None


def signed_out(scope: Scope, had_cookie: bool) -> Response:
    """A page goes to the sign-in form (and back after it); anything else gets 401."""
    response: Response
    if scope["method"] == "GET" and scope["path"] != "/ui/stream":
        target = scope["path"] + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        response = RedirectResponse("/ui/sign-in?next=" + quote(target, safe=""), status_code=303)
    else:
        response = JSONResponse({"detail": "sign in to the web UI first"}, status_code=401)
    if had_cookie:
        response.delete_cookie(COOKIE, path="/")
    return response
