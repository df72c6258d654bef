"""Incoming webhooks: managed under ``/api/webhooks``, called at ``POST /hooks/{slug}``.

A webhook's secret is made by the server, shown once (at creation and at each rotation)
and kept sealed with the server's Fernet key, as block secrets are. The hook lies outside
``/api``, so no API key is asked for: the webhook's own secret decides (``webhooks.verify``).
The event it renders is checked as ``POST /api/events`` checks events (server names
refused, limits kept) and stored the same way, so it streams to automations.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.blocks.encryption import seal, unseal
from flowyard.errors import Conflict, FlowyardError, InvalidInput, NotFound
from flowyard.events.schemas import Event
from flowyard.orchestrator import event_queries as queries
from flowyard.orchestrator import events
from flowyard.orchestrator import webhooks as hooks
from flowyard.orchestrator.api import events as event_api
from flowyard.orchestrator.api.blocks import fernet_of
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.store import models as m

log = structlog.get_logger()
router = APIRouter(tags=["webhooks"])

REFUSED = "missing or wrong webhook secret or signature"
NOT_HERE = "no webhook listens here"


# -- management --------------------------------------------------------------------------


@router.post("/api/webhooks", status_code=201)
async def create_webhook(body: s.WebhookCreate, orch: Orch) -> s.WebhookCreated:
    """Make a webhook; its secret is in this answer only."""
    secret = hooks.new_secret()

    def create() -> s.Webhook:
        _parses(body.template)
        with orch.db.session() as session:
            if _find(session, body.name) is not None:
                raise Conflict(f"a webhook named {body.name!r} already exists")
            row = m.Webhook(
                name=body.name,
                slug=hooks.new_slug(),
                description=body.description,
                template=body.template,
                auth=body.auth,
                secret=_sealed(orch, secret),
                enabled=body.enabled,
            )
            session.add(row)
            events.changed(session, "webhook", row, "created", _payload(row))
            return _doc(row)

    doc = await orch.in_thread(create)
    return s.WebhookCreated(**doc.model_dump(), secret=secret)


@router.get("/api/webhooks")
async def list_webhooks(orch: Orch) -> list[s.Webhook]:
    def read() -> list[s.Webhook]:
        with orch.db.read() as session:
            rows = session.scalars(select(m.Webhook).order_by(m.Webhook.name))
            return [_doc(row) for row in rows]

    return await orch.in_thread(read)


@router.get("/api/webhooks/{name}")
async def read_webhook(name: str, orch: Orch) -> s.Webhook:
    def read() -> s.Webhook:
        with orch.db.read() as session:
            return _doc(_get(session, name))

    return await orch.in_thread(read)


@router.patch("/api/webhooks/{name}")
async def update_webhook(name: str, body: s.WebhookUpdate, orch: Orch) -> s.Webhook:
    wanted = body.model_dump(exclude_none=True)

    def update() -> s.Webhook:
        if body.template is not None:
            _parses(body.template)
        with orch.db.session() as session:
            row = _get(session, name)
            changed = sorted(k for k, v in wanted.items() if getattr(row, k) != v)
            for key in changed:
                setattr(row, key, wanted[key])
            if changed:
                session.flush()
                events.changed(session, "webhook", row, "updated", _payload(row, changed))
            return _doc(row)

    return await orch.in_thread(update)


@router.post("/api/webhooks/{name}/rotate-secret")
async def rotate_webhook_secret(name: str, orch: Orch) -> s.WebhookCreated:
    """Give the webhook a new secret (shown in this answer only); the old one stops working."""
    secret = hooks.new_secret()

    def rotate() -> s.Webhook:
        with orch.db.session() as session:
            row = _get(session, name)
            row.secret = _sealed(orch, secret)
            session.flush()
            events.changed(session, "webhook", row, "updated", _payload(row, ["secret"]))
            return _doc(row)

    doc = await orch.in_thread(rotate)
    return s.WebhookCreated(**doc.model_dump(), secret=secret)


@router.delete("/api/webhooks/{name}", status_code=204)
async def delete_webhook(name: str, orch: Orch) -> None:
    def delete() -> None:
        with orch.db.session() as session:
            row = _get(session, name)
            events.changed(session, "webhook", row, "deleted", _payload(row))
            session.delete(row)

    await orch.in_thread(delete)


# -- the hook ----------------------------------------------------------------------------


@router.post("/hooks/{slug}", status_code=202)
async def receive(slug: str, request: Request, orch: Orch) -> dict[str, str]:
    """Turn this request into the webhook's event; it must carry the webhook's secret or
    its signature (401), and the webhook must exist and be enabled (404)."""
    body = await request.body()  # read whole, and bounded, by the LimitsMiddleware
    headers, query = dict(request.headers), dict(request.query_params)
    now = datetime.now(UTC)

    def accept() -> Event:
        with orch.db.read() as session:
            row = session.scalars(select(m.Webhook).where(m.Webhook.slug == slug)).first()
            if row is None or not row.enabled:
                raise HTTPException(404, NOT_HERE)
            webhook = {"id": row.id, "name": row.name}
            template, auth, sealed = row.template, row.auth, row.secret
        secret = _unsealed(orch, sealed, webhook["name"])
        if not secret or not hooks.verify(auth, secret, headers, body):
            log.info("webhook_refused", webhook=webhook["name"], auth=auth)
            raise HTTPException(401, REFUSED)
        ctx = hooks.context(body, headers, query, webhook, now)
        max_bytes = orch.settings.events_max_size_bytes
        event = hooks.render_event(template, ctx, webhook, now, max_chars=2 * max_bytes)
        try:
            event_api.check([event], max_bytes)
        except InvalidInput as exc:
            why = str(exc).removeprefix("events[0]: ")
            raise InvalidInput(f"the rendered event is refused: {why}") from None
        _store(orch, event)
        return event

    event = await orch.in_thread(accept)
    return {"id": str(event.id)}


def _store(orch: Orchestrator, event: Event) -> None:
    """As ``POST /api/events`` stores one: skipped when its id is stored already."""
    with orch.db.session() as session:
        if not queries.known_ids(session, [str(event.id)]):
            events.add(session, event)


# -- helpers -----------------------------------------------------------------------------


def _parses(template: str) -> None:
    """422 naming ``template`` when it is not a Jinja template (compiling a long one takes
    a while: called off the event loop)."""
    why = hooks.check_template(template)
    if why is not None:
        msg = f"not a valid template: {why}"
        raise RequestValidationError(
            [{"loc": ("body", "template"), "msg": msg, "type": "value_error"}]
        )


def _sealed(orch: Orchestrator, secret: str) -> str:
    sealed = seal(fernet_of(orch), {"secret": secret})
    assert sealed is not None
    return sealed


def _unsealed(orch: Orchestrator, sealed: str, name: str) -> str:
    """The webhook's secret; empty (so every request is refused) when the server's key
    changed since it was sealed: ``rotate-secret`` gives it one that works."""
    try:
        return str(unseal(fernet_of(orch), sealed).get("secret", ""))
    except FlowyardError:
        log.warning("webhook_secret_unreadable", webhook=name)
        return ""


def _find(session: Session, name: str) -> m.Webhook | None:
    return session.scalars(select(m.Webhook).where(m.Webhook.name == name)).first()


def _get(session: Session, name: str) -> m.Webhook:
    row = _find(session, name)
    if row is None:
        raise NotFound(f"webhook {name!r} not found")
    return row


def _doc(row: m.Webhook) -> s.Webhook:
    return s.Webhook(
        id=row.id,
        name=row.name,
        path=f"/hooks/{row.slug}",
        description=row.description,
        template=row.template,
        auth=row.auth,
        enabled=row.enabled,
        created=row.created,
        updated=row.updated,
    )


def _payload(row: m.Webhook, changed: list[str] | None = None) -> dict[str, Any]:
    """What a webhook's events tell: never its secret."""
    payload: dict[str, Any] = {"auth": row.auth, "enabled": row.enabled}
    if changed is not None:
        payload["changed"] = changed
    return payload
