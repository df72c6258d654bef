"""The web UI, served by the orchestrator at ``/`` on the API's port.

Server-rendered pages (Jinja2, ``templates/``), one small stylesheet and one small
JavaScript module (``static/``), kept live by one server-sent-events stream read from the
event store (``stream``, ``feeds``). No Node.js, no front-end packages, nothing from a CDN:
the package ships all of it. The runs list pages with ``orchestrator.run_pages``, as the
API does. With API keys required, a browser signs in once with an admin
or viewer key and holds a session (``sessions``, ``gate``); what it may do is decided by
``authority.guard`` like every API call.

Modules: ``pages`` (routes), ``run_view`` (one run),
``feeds`` and ``stream`` (live), ``sessions`` and ``gate`` (access), ``views`` (rendering);
the observing pages ``artifact_pages`` (with ``markdown``, which sanitises),
``automation_pages`` (with ``automation_form`` and ``automation_choices``, what its
reference fields suggest) and ``event_pages``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from flowyard.settings import Settings
from flowyard.ui import pages
from flowyard.ui.gate import SessionGate
from flowyard.ui.views import HERE

__all__ = ["install"]


def install(app: FastAPI, settings: Settings) -> None:
    """Add the UI's routes and static files to ``app``; with keys required, its session
    gate. Call it after ``api_keys.install_auth`` (so the gate runs first) and before the
    request limits (which stay outermost)."""
    for router in pages.ROUTERS:
        app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="ui-static")
    if settings.api_key:
        app.add_middleware(SessionGate, settings=settings)
