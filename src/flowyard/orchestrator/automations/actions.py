"""What each automation action does: ``run_action``, the RQ job, and one function per type.

An action acts through the API's own handlers (``run_deployment``, ``update_pool``,
``cancel_flow_run``…), so its effects and events are those of the same request to the API.
The handlers are async and run on the API process's event loop; the job runs in the action
worker's thread (``action_queue``) and waits for them. Blocking work (the store, a
notification's delivery) stays in the job's thread.

An action row moves ``pending → running → succeeded | failed``; an attempt that failed for
a reason that may pass (a service down, Redis or the store busy: ``is_transient``) goes
back to ``pending`` with its error, and RQ tries it again after its retry interval. An
error no retry can fix (a deleted deployment, a bad template, a refused message) fails the
action at once. Its final outcome is an event, ``flowyard.automation.action.executed`` or
``.failed``, about the automation. A row that is not ``pending`` is never run again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError
from rq import get_current_job
from sqlalchemy import or_, select

from flowyard import schemas as s
from flowyard.blocks.core import parse_ref
from flowyard.blocks.encryption import unseal
from flowyard.blocks.notify import DEFAULT_BODY, DEFAULT_SUBJECT, NotificationBlock, Webhook
from flowyard.blocks.notify.delivery import is_transient_status, redact
from flowyard.blocks.notify.messages import render_message
from flowyard.blocks.registry import load_block_type
from flowyard.errors import (
    ActionFailed,
    ApiUnavailable,
    FlowyardError,
    InvalidInput,
    NotFound,
    NotificationError,
    QueueUnavailable,
)
from flowyard.events.schemas import RESOURCE_ID, RESOURCE_ROLE
from flowyard.orchestrator import events, single_creates
from flowyard.orchestrator.api import deployments, flow_runs, pools
from flowyard.orchestrator.api.blocks import fernet_of
from flowyard.orchestrator.automations import targets, templates
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.schemas import automations as a
from flowyard.states import StateType
from flowyard.store import models as m

log = structlog.get_logger()
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

AUTOMATION_SUBJECT = "Automation {{ automation.name }} {{ firing.state }}"
AUTOMATION_BODY = (
    "Automation {{ automation.name }} {{ firing.state }} at {{ firing.fired }}"
    "{% if event %} on {{ event.event }} of {{ event.resource['flowyard.resource.name'] "
    "or event.resource['flowyard.resource.id'] }}{% endif %}."
)
"""A notification's default texts when the event is not about a flow run."""
MAX_ERROR = 2000
_ACTION: TypeAdapter[Any] = TypeAdapter(a.Action)


@dataclass
class Runtime:
    """The API process's orchestrator and event loop, which jobs act through."""

    orch: Orchestrator
    loop: asyncio.AbstractEventLoop


_runtime: Runtime | None = None


def install(orch: Orchestrator, loop: asyncio.AbstractEventLoop) -> None:
    """Let this process's jobs act through ``orch`` (``ActionQueue.start``)."""
    global _runtime
    _runtime = Runtime(orch, loop)


def uninstall() -> None:
    global _runtime
    _runtime = None


@dataclass
class Attempt:
    """One attempt of one action, with what it acts on and the context of its templates."""

    runtime: Runtime
    action: Any  # one of schemas.automations.Action
    event: dict[str, Any] | None
    values: dict[str, Any]
    secrets: list[str] = field(default_factory=list)
    """Secret values the attempt met (a block's): scrubbed from any error."""

    @property
    def orch(self) -> Orchestrator:
        return self.runtime.orch

    def call(self, start: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run an API handler on the event loop and wait for it (bounded by the setting)."""
        timeout = self.orch.settings.automation_action_timeout_seconds
        coroutine = start()
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self.runtime.loop)
        except RuntimeError:  # the loop is closed: the server is stopping
            coroutine.close()
            raise
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TimeoutError(f"the action took longer than {timeout:g} s") from None


def run_action(action_id: str) -> dict[str, Any]:
    """The RQ job: run the action row ``action_id`` once, if it is still pending."""
    if _runtime is None:
        raise RuntimeError("automation actions are not running in this process")
    runtime = _runtime
    attempts = _claim(runtime.orch, action_id)
    if attempts is None:
        return {"skipped": True}
    attempt: Attempt | None = None
    failure: Exception | None = None
    try:
        attempt = _prepare(runtime, action_id)
        did = PERFORM[attempt.action.type](attempt)
    except Exception as exc:
        failure = exc
    if failure is not None:  # outside the except: no traceback of it, which may quote a secret
        secrets = attempt.secrets if attempt else []
        raise _failed(runtime.orch, action_id, attempts, failure, secrets)
    _record(runtime.orch, action_id, "succeeded", did=did)
    log.info("automation_action_succeeded", action_id=action_id, attempts=attempts)
    return did


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed: a service down or busy, Redis or the store
    unavailable, a timeout. Missing targets, bad input and refusals are final."""
    if isinstance(exc, NotificationError):
        if exc.status is None:
            return True
        if exc.service == "email":  # SMTP: 4xx are temporary, 5xx permanent
            return 400 <= exc.status < 500
        return is_transient_status(exc.status)
    if isinstance(exc, (QueueUnavailable, ApiUnavailable)):
        return True
    return not isinstance(exc, (FlowyardError, ValidationError))


# -- the row's life ------------------------------------------------------------------------


def _claim(orch: Orchestrator, action_id: str) -> int | None:
    """Move the row to ``running`` and count the attempt; None if it is not pending."""
    with orch.db.session() as session:
        row = session.get(m.AutomationAction, action_id, with_for_update=True)
        if row is None or row.status != "pending":
            log.info("automation_action_skipped", action_id=action_id, status=row and row.status)
            return None
        row.status = "running"
        row.attempts += 1
        return row.attempts


def _prepare(runtime: Runtime, action_id: str) -> Attempt:
    with runtime.orch.db.read() as session:
        row = session.get(m.AutomationAction, action_id)
        firing = session.get(m.AutomationFiring, row.firing_id) if row else None
        automation = session.get(m.Automation, row.automation_id) if row else None
        if row is None or firing is None or automation is None:
            raise NotFound(f"the automation of action {action_id} was deleted")
        try:
            action = _ACTION.validate_python(row.action)
        except ValidationError as exc:
            raise InvalidInput(f"the action is not valid: {_first_error(exc)}") from None
        values = templates.context(session, automation, firing, runtime.orch.settings)
        return Attempt(runtime, action, firing.triggering_event, values)


def _failed(
    orch: Orchestrator, action_id: str, attempts: int, exc: Exception, secrets: list[str]
) -> ActionFailed:
    """Record a failed attempt: final, or pending again for RQ's next retry."""
    text = str(exc) if isinstance(exc, FlowyardError) else f"{type(exc).__name__}: {exc}"
    error = redact(text, secrets)[:MAX_ERROR]
    job = get_current_job()
    final = (
        not is_transient(exc)
        or attempts > orch.settings.automation_action_retries
        or (job is not None and not job.should_retry)
    )
    if final and job is not None:
        job.retries_left = 0  # RQ keeps it among the failed jobs instead of retrying
    _record(orch, action_id, "failed" if final else "pending", error=error)
    log.warning(
        "automation_action_failed", action_id=action_id, attempts=attempts, final=final, error=error
    )
    return ActionFailed(error)


def record_lost(orch: Orchestrator, action_id: str, error: str) -> None:
    """Fail a row whose job ended or was lost before it recorded an outcome, with no
    attempt left (the sweep's finding), unless it has an outcome by now."""
    _record(orch, action_id, "failed", error=error, unless_final=True)


def _record(
    orch: Orchestrator,
    action_id: str,
    status: str,
    *,
    did: dict[str, Any] | None = None,
    error: str | None = None,
    unless_final: bool = False,
) -> None:
    """The row's new status; a final one with its event, in the same transaction."""
    with orch.db.session() as session:
        row = session.get(m.AutomationAction, action_id, with_for_update=unless_final)
        if row is None or (unless_final and row.status in ("succeeded", "failed")):
            return
        row.status, row.error = status, error
        if status == "pending":
            return
        row.finished = datetime.now(UTC)
        automation = session.get(m.Automation, row.automation_id)
        name = automation.name if automation else None
        about = events.resource("automation", row.automation_id, name)
        firing = session.get(m.AutomationFiring, row.firing_id)
        related = _related(firing.triggering_event if firing else None, did or {})
        payload: dict[str, Any] = {
            "firing_id": row.firing_id,
            "action_index": row.index,
            "action_type": row.action.get("type"),
            "when": row.when,
        }
        if status == "succeeded":
            events.record(session, "flowyard.automation.action.executed", about, related, {
                **payload, **(did or {})
            })  # fmt: skip
        else:
            payload.update(error=error, attempts=row.attempts)
            events.record(session, "flowyard.automation.action.failed", about, related, payload)


def _related(event: dict[str, Any] | None, did: dict[str, Any]) -> list[events.Labels]:
    found = []
    resource = (event or {}).get("resource") or {}
    if resource.get(RESOURCE_ID):
        found.append({RESOURCE_ID: resource[RESOURCE_ID], RESOURCE_ROLE: "triggering"})
    if did.get("flow_run_id"):
        found.append(events.related("flow-run", "flow-run", did["flow_run_id"]))
    return found


def _model(model: type[M], where: str, **values: Any) -> M:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise InvalidInput(f"{where}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return f"{'.'.join(str(p) for p in first['loc']) or 'value'}: {first['msg']}"


# -- the actions -------------------------------------------------------------------------


def run_deployment(attempt: Attempt) -> dict[str, Any]:
    action: a.RunDeployment = attempt.action
    ref = targets.target(action, attempt.event, "deployment", action.deployment)
    body = _model(
        s.DeploymentRunRequest,
        "run-deployment",
        parameters=templates.render_value(action.parameters, attempt.values, "parameters"),
        job_variables=templates.render_value(action.job_variables, attempt.values, "job_variables"),
    )
    run = attempt.call(lambda: single_creates.create_run(attempt.orch, ref, body))
    return {
        "deployment_id": run["deployment_id"],
        "flow_run_id": run["id"],
        "flow_run_name": run["name"],
    }


def set_deployment_paused(paused: bool) -> Callable[[Attempt], dict[str, Any]]:
    def act(attempt: Attempt) -> dict[str, Any]:
        action = attempt.action
        ref = targets.target(action, attempt.event, "deployment", action.deployment)
        change = deployments.pause_deployment if paused else deployments.resume_deployment
        doc = attempt.call(lambda: change(ref, attempt.orch))
        return {"deployment_id": doc.id, "paused": paused}

    return act


def set_pool_paused(paused: bool) -> Callable[[Attempt], dict[str, Any]]:
    def act(attempt: Attempt) -> dict[str, Any]:
        name = targets.pool_name(attempt.action, attempt.event, attempt.orch.db)
        body = s.WorkPoolUpdate(paused=paused)
        doc = attempt.call(lambda: pools.update_pool(name, body, attempt.orch))
        return {"work_pool": doc.name, "paused": paused}

    return act


def set_queue_paused(paused: bool) -> Callable[[Attempt], dict[str, Any]]:
    def act(attempt: Attempt) -> dict[str, Any]:
        pool, queue = targets.queue(attempt.action, attempt.event, attempt.orch.db)
        body = s.WorkQueueUpdate(paused=paused)
        attempt.call(lambda: pools.update_queue(attempt.orch, pool, queue, body))
        return {"work_queue": f"{pool}/{queue}", "paused": paused}

    return act


def set_automation_enabled(enabled: bool) -> Callable[[Attempt], dict[str, Any]]:
    def act(attempt: Attempt) -> dict[str, Any]:
        action = attempt.action
        ref = targets.target(action, attempt.event, "automation", action.automation)
        with attempt.orch.db.session() as session:
            named = or_(m.Automation.id == ref, m.Automation.name == ref)
            row = session.scalars(select(m.Automation).where(named)).first()
            if row is None:
                raise NotFound(f"automation {ref!r} not found")
            if row.enabled != enabled:
                row.enabled = enabled
                events.changed(session, "automation", row, "resumed" if enabled else "paused")
            return {"automation_id": row.id, "enabled": enabled}

    return act


def cancel_flow_run(attempt: Attempt) -> dict[str, Any]:
    ref = targets.inferred(attempt.event, "flow-run")
    doc = attempt.call(lambda: flow_runs.cancel_flow_run(ref, attempt.orch))
    return {"flow_run_id": doc.id, "state": doc.state.type.value}


def change_flow_run_state(attempt: Attempt) -> dict[str, Any]:
    action: a.ChangeFlowRunState = attempt.action
    ref = targets.inferred(attempt.event, "flow-run")
    message = templates.render_text(action.message, attempt.values) if action.message else None
    body = _model(
        s.StateChange,
        "change-flow-run-state",
        type=StateType(action.state),
        message=message,
        force=True,
    )
    result = attempt.call(lambda: flow_runs.set_flow_run_state(ref, body, attempt.orch))
    if not result.accepted:
        raise InvalidInput(f"flow run {ref} was not moved to {action.state}: {result.reason}")
    return {"flow_run_id": ref, "state": result.state.type.value}


def send_notification(attempt: Attempt) -> dict[str, Any]:
    action: a.SendNotification = attempt.action
    block = _notification_block(attempt, action.block)
    _notify(attempt, block, action.subject, action.body)
    return {"block": action.block, "service": block.service}


def call_webhook(attempt: Attempt) -> dict[str, Any]:
    action: a.CallWebhook = attempt.action
    ref = action.block if "/" in action.block else f"webhook/{action.block}"
    block = _notification_block(attempt, ref)
    if not isinstance(block, Webhook):
        raise InvalidInput(f"block {ref} is not a webhook block")
    if action.payload is not None:
        block = block.model_copy(update={"body_template": action.payload})
    _notify(attempt, block, None, None)
    return {"block": ref}


def _notification_block(attempt: Attempt, ref: str) -> NotificationBlock:
    """The saved block ``TYPE/NAME`` with its secrets, which must be a notification block."""
    slug, name = parse_ref(ref)
    block_type = load_block_type(slug)
    if not issubclass(block_type, NotificationBlock):
        raise InvalidInput(f"block {ref} is not a notification block")
    orch = attempt.orch
    with orch.db.read() as session:
        query = select(m.Block).where(m.Block.type == slug, m.Block.name == name)
        row = session.scalars(query).first()
        if row is None:
            raise NotFound(f"block {ref} not found")
        secrets = unseal(fernet_of(orch), row.secrets)
        attempt.secrets += [str(v) for v in secrets.values() if v]
        data = {**row.data, **secrets}
    try:
        block = block_type.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(f"block {ref} is not valid: {_first_error(exc)}") from None
    attempt.secrets += block.secret_values()
    return block


def _notify(
    attempt: Attempt, block: NotificationBlock, subject: str | None, body: str | None
) -> None:
    about_run = "flow_run" in attempt.values
    subject_text, body_text = render_message(
        attempt.values,
        subject or (DEFAULT_SUBJECT if about_run else AUTOMATION_SUBJECT),
        body or (DEFAULT_BODY if about_run else AUTOMATION_BODY),
    )
    block.notify(subject_text, body_text, context=attempt.values)


def do_nothing(attempt: Attempt) -> dict[str, Any]:
    return {}


PERFORM: dict[str, Callable[[Attempt], dict[str, Any]]] = {
    "run-deployment": run_deployment,
    "pause-deployment": set_deployment_paused(True),
    "resume-deployment": set_deployment_paused(False),
    "pause-work-pool": set_pool_paused(True),
    "resume-work-pool": set_pool_paused(False),
    "pause-work-queue": set_queue_paused(True),
    "resume-work-queue": set_queue_paused(False),
    "pause-automation": set_automation_enabled(False),
    "resume-automation": set_automation_enabled(True),
    "cancel-flow-run": cancel_flow_run,
    "change-flow-run-state": change_flow_run_state,
    "send-notification": send_notification,
    "call-webhook": call_webhook,
    "do-nothing": do_nothing,
}
"""Every action type (``schemas.automations.Action``) and what it does."""
