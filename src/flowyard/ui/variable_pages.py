"""Variables (``/ui/variables``): each variable's value and tags, and for admins a form to
create one, a value box to change each, and a button to delete it (all sent to
``/api/variables`` by the page's script, so ``authority.guard`` decides)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from flowyard.orchestrator.runtime import Orch
from flowyard.store import models as m
from flowyard.ui import views

LISTED = 1000  # variables on the page at most


async def variables_page(request: Request, orch: Orch) -> Response:
    def read() -> list[m.Variable]:
        with orch.db.read() as session:
            query = select(m.Variable).order_by(m.Variable.name).limit(LISTED)
            return list(session.scalars(query))

    rows = await orch.in_thread(read)
    variables = [
        {"name": row.name, "value": json.dumps(json.loads(row.value_json), indent=None),
         "tags": row.tags or [], "updated": row.updated}
        for row in rows
    ]  # fmt: skip
    context = views.page_context(request, nav="variables", variables=variables, listed=LISTED)
    return views.render(request, "variables.html", context)


def add_routes(router: APIRouter) -> None:
    """Add the page to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    router.add_api_route("/variables", variables_page, methods=["GET"], response_class=HTMLResponse)
