"""Rendering: the Jinja2 templates (autoescaped), their filters, and what every page knows
about its viewer."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from flowyard.orchestrator.auth import KeyInfo, Role
from flowyard.orchestrator.authority import LOCAL

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
MAX_LOG_CHARS = 4000  # a longer log message is shown cut (the API has it whole)


def when(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def duration(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    seconds = ((end or datetime.now(UTC)) - start).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes}m {seconds:02d}s" if minutes < 60 else f"{minutes // 60}h {minutes % 60:02d}m"


def sortkey(value: datetime) -> str:
    """A fixed-width UTC time, so that the page's script orders rows by comparing text."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def level_name(level: int) -> str:
    return logging.getLevelName(level) if level in LEVELS.values() else str(level)


def cut(text: str, limit: int = MAX_LOG_CHARS) -> str:
    return (
        text if len(text) <= limit else text[:limit] + f" … ({len(text) - limit} more characters)"
    )


def pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


templates.env.filters.update(
    when=when, sortkey=sortkey, level_name=level_name, cut=cut, pretty=pretty
)
templates.env.globals.update(duration=duration, levels=LEVELS)


def viewer(request: Request) -> KeyInfo:
    """Who is looking: the session's caller, or the local admin when keys are off."""
    found: KeyInfo | None = getattr(request.state, "api_key", None)
    return found or LOCAL


def page_context(request: Request, **values: Any) -> dict[str, Any]:
    """What the layout needs: who is signed in, whether they may change things, the CSRF
    token for the JavaScript's requests."""
    caller = viewer(request)
    session = getattr(request.state, "ui_session", None)
    return {
        "caller": caller,
        "signed_in": session is not None,
        "can_change": caller.role is Role.ADMIN,
        "csrf": session.csrf if session is not None else "",
        **values,
    }


SECURITY_HEADERS = {
    # scripts, styles and connections from this server only; no framing (no clickjacking of
    # the Cancel button); no page address sent to other sites
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """A page, with the headers every page carries."""
    return templates.TemplateResponse(request, name, context, status, headers=SECURITY_HEADERS)


def fragment(name: str, **values: Any) -> str:
    """A partial template rendered to a string (for the live stream's messages)."""
    return templates.get_template(name).render(**values)
