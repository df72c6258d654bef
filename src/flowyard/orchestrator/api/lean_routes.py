"""Hot routes served without FastAPI's per-request machinery, documented like any other.

Workers claim and heartbeat many times a second; FastAPI's dependency solving, body
validation and response re-validation cost more API CPU than the claim itself. A
``LeanRoute`` is an ordinary ``APIRoute`` (same path, OpenAPI entry and authority rule)
whose requests go first to a plain handler given with ``@served_by``. Each request is
first asked of ``authority.guard``, as on every route. The handler reads the body with
the route's pydantic model and answers the model's JSON. A request it does not take as
it is (a body or header it would refuse) it ``Decline``\\ s to FastAPI's own handler, so
that refusals read exactly as on every other route.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError

from flowyard.orchestrator.authority import guard

LeanHandler = Callable[[Request], Awaitable[Response]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
Model = TypeVar("Model", bound=BaseModel)

_HANDLERS: dict[Callable[..., Any], LeanHandler] = {}


class Decline(Exception):
    """Raised by a lean handler for a request that FastAPI's own handler should answer."""


def served_by(handler: LeanHandler) -> Callable[[Endpoint], Endpoint]:
    """Mark a route's endpoint as served by ``handler`` (the endpoint still documents it
    and answers the requests the handler declines)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        _HANDLERS[endpoint] = handler
        return endpoint

    return mark


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose endpoint's lean handler answers first (see the module)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        full = super().get_route_handler()
        lean = _HANDLERS[self.endpoint]

        async def handle(request: Request) -> Response:
            await guard(request)  # the app's dependency, which FastAPI's handler would call
            try:
                return await lean(request)
            except Decline:
                return await full(request)

        return handle


async def parsed(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as ``model``, or ``Decline`` (FastAPI's handler words the
    422, and reads a body that is not declared JSON as it does)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    subtype = media.partition("/")[2]
    if subtype != "json" and not subtype.endswith("+json"):
        raise Decline
    try:
        data = json.loads(await request.body())
        if not isinstance(data, dict):
            raise Decline
        return model.model_validate(data)
    except (ValueError, RecursionError, ValidationError) as exc:  # JSON errors are ValueErrors
        raise Decline from exc


def answer(doc: BaseModel) -> Response:
    """The response FastAPI would make of ``doc`` for a route that returns its model."""
    return Response(doc.model_dump_json(by_alias=True), media_type="application/json")
