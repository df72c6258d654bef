"""What the pydantic documents cannot check of an automation: its templates compile, and what
its actions select exists.

Each finding is one entry of FastAPI's 422 list (``loc``, ``msg``, ``type``), its ``loc``
naming the field (``["body", "actions", 0, "parameters", "day"]``), so that a refused
automation says which action and field to fix. ``template_errors`` is pure;
``reference_errors`` reads the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from flowyard.blocks.notify import NotificationBlock
from flowyard.blocks.registry import block_types
from flowyard.errors import NotFound
from flowyard.orchestrator.lookups import get_deployment
from flowyard.schemas import automations as a
from flowyard.store import models as m

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

Loc = tuple[str | int, ...]
Error = dict[str, Any]
ACTION_LISTS = ("actions", "actions_on_trigger", "actions_on_resolve")
WEBHOOK_BLOCK_TYPE = "webhook"


def check(session: Session, doc: a.AutomationCore, at: Loc = ("body",)) -> None:
    """Raise a 422 listing every template that does not compile and every selected target
    that does not exist (``at``: where ``doc`` is in the request)."""
    errors = template_errors(doc, at) + reference_errors(session, doc, at)
    if errors:
        raise RequestValidationError(errors)


def actions(doc: a.AutomationCore) -> Iterator[tuple[Loc, Any]]:
    """Every action of ``doc`` with where it is (``("actions", 0)``)."""
    for field in ACTION_LISTS:
        for index, action in enumerate(getattr(doc, field)):
            yield (field, index), action


# -- templates ---------------------------------------------------------------------------


def template_errors(doc: a.AutomationCore, at: Loc = ("body",)) -> list[Error]:
    """A 422 entry for each template of ``doc`` that does not compile."""
    found = [(at + where, text) for where, text in templates(doc)]
    return [
        _error(loc, f"template error: {why}", "template")
        for loc, text in found
        if (why := _compile(text))
    ]


def templates(doc: a.AutomationCore) -> Iterator[tuple[Loc, str]]:
    """Every template of ``doc``: action parameters and job variables (each string in
    them), notification and webhook texts, the dedupe key."""
    for where, action in actions(doc):
        if isinstance(action, a.RunDeployment):
            yield from _strings(where + ("parameters",), action.parameters)
            yield from _strings(where + ("job_variables",), action.job_variables)
        for field in ("message", "subject", "body", "payload"):
            value = getattr(action, field, None)
            if isinstance(value, str):
                yield where + (field,), value
    if doc.dedupe is not None:
        yield ("dedupe", "key"), doc.dedupe.key


def _strings(where: Loc, value: Any) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(where + (str(key),), item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(where + (index,), item)


def _compile(text: str) -> str | None:
    """Why ``text`` is not a template that compiles (None when it is)."""
    from jinja2 import TemplateError

    if "{" not in text:
        return None
    try:
        _environment().parse(text)
    except TemplateError as exc:
        return str(exc)
    return None


@cache
def _environment() -> SandboxedEnvironment:
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(autoescape=False)


# -- references --------------------------------------------------------------------------


def reference_errors(session: Session, doc: a.AutomationCore, at: Loc = ("body",)) -> list[Error]:
    """A 422 entry for each ``selected`` target of ``doc`` that is missing or unknown."""
    errors = []
    for where, action in actions(doc):
        field, why = _reference(session, doc, action)
        if why is not None:
            errors.append(_error(at + where + (field,), why, "reference"))
    return errors


def _reference(session: Session, doc: a.AutomationCore, action: Any) -> tuple[str, str | None]:
    """The field of ``action`` that selects a target, and why that target is wrong."""
    if isinstance(action, a.SendNotification | a.CallWebhook):
        return "block", _block(session, action)
    if getattr(action, "source", "inferred") != "selected":
        return "", None
    for field, finder in (
        ("deployment", _deployment),
        ("work_pool", _pool),
        ("work_queue", _queue),
        ("automation", _automation),
    ):
        if field in type(action).model_fields:
            ref = getattr(action, field)
            if not ref:
                return field, f"a {field.replace('_', ' ')} to act on is needed (source: selected)"
            return field, None if finder(
                session, doc, ref
            ) else f"{field.replace('_', ' ')} {ref!r} not found"
    return "", None


def _deployment(session: Session, doc: a.AutomationCore, ref: str) -> bool:
    try:
        get_deployment(session, ref)
    except NotFound:
        return False
    return True


def _pool(session: Session, doc: a.AutomationCore, ref: str) -> bool:
    query = select(m.WorkPool.id).where(or_(m.WorkPool.name == ref, m.WorkPool.id == ref))
    return session.scalars(query).first() is not None


def _queue(session: Session, doc: a.AutomationCore, ref: str) -> bool:
    query = select(m.WorkQueue.id)
    pool, sep, name = ref.rpartition("/")
    if sep:
        query = query.join(m.WorkPool).where(m.WorkPool.name == pool, m.WorkQueue.name == name)
    else:
        query = query.where(m.WorkQueue.id == ref)
    return session.scalars(query).first() is not None


def _automation(session: Session, doc: a.AutomationCore, ref: str) -> bool:
    if ref == doc.name:
        return True  # itself, being created or replaced
    query = select(m.Automation.id).where(or_(m.Automation.name == ref, m.Automation.id == ref))
    return session.scalars(query).first() is not None


def _block(session: Session, action: a.SendNotification | a.CallWebhook) -> str | None:
    slug, sep, name = action.block.partition("/")
    if not sep:
        return f"{action.block!r} is not a block reference TYPE/NAME"
    if isinstance(action, a.CallWebhook) and slug != WEBHOOK_BLOCK_TYPE:
        return f"a webhook is called through a {WEBHOOK_BLOCK_TYPE!r} block, not {slug!r}"
    block_type = block_types().get(slug)
    if block_type is None or not issubclass(block_type, NotificationBlock):
        return f"{slug!r} is not a notification block type"
    query = select(m.Block.id).where(m.Block.type == slug, m.Block.name == name)
    if session.scalars(query).first() is None:
        return f"block {action.block!r} not found"
    return None


def _error(loc: Loc, msg: str, kind: str) -> Error:
    return {"loc": list(loc), "msg": msg, "type": kind}
