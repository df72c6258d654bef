"""Scopes: is what a request names the caller's own? (see ``authority.py``)

Each scope looks at the resource a request names — in its path, query or body — and
decides from the store whether it belongs to the caller: a worker key owns its pools'
runs, deployments and the blocks they refer to; a run token its run, the child runs below
it, and the blocks its deployment names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard.blocks import references
from flowyard.errors import NotFound
from flowyard.orchestrator import lineage, runs
from flowyard.orchestrator.auth import KeyInfo, Role
from flowyard.orchestrator.lineage import MAX_CHILD_DEPTH
from flowyard.orchestrator.lookups import get_deployment
from flowyard.store import models as m


@dataclass(frozen=True)
class Ask:
    """One request as a scope sees it."""

    caller: KeyInfo
    method: str
    path: dict[str, str]
    query: dict[str, str]
    body: Any
    store: Session | None  # None for the scopes in PURE, which read no store

    @property
    def session(self) -> Session:
        assert self.store is not None, "a scope in PURE read the store"
        return self.store


Scope = Callable[[Ask], bool]


def anything(_: Ask) -> bool:
    return True


def serves(caller: KeyInfo, pool: str | None) -> bool:
    """A worker key serves its pools; one naming no pool serves every pool."""
    return pool is not None and (not caller.pools or pool in caller.pools)


def _pool_of(run: m.FlowRun) -> str | None:
    return run.queue.pool.name if run.queue else None


def _run(session: Session, ref: str | None) -> m.FlowRun | None:
    if not isinstance(ref, str):
        return None
    try:
        return runs.get_run(session, ref)
    except NotFound:
        return None


def _below(session: Session, run: m.FlowRun | None, root: str | None) -> bool:
    """True when ``run`` is the run ``root`` or a child run (at any depth) of it."""
    for _ in range(MAX_CHILD_DEPTH):
        if run is None or root is None:
            return False
        if run.id == root:
            return True
        run = lineage.parent_run(session, run)
    return False


def _owns_run(ask: Ask, run: m.FlowRun | None) -> bool:
    """The run is one of the caller's: of a pool it serves, or below the token's run."""
    if run is None:
        return False
    if ask.caller.role is Role.WORKER:
        return serves(ask.caller, _pool_of(run))
    return _below(ask.session, run, ask.caller.run_id)


def _owns_task_run(ask: Ask, task_run_id: Any) -> bool:
    task = ask.session.get(m.TaskRun, task_run_id) if isinstance(task_run_id, str) else None
    if task is None:
        return False
    if task.flow_run_id is None:  # a background task run: task workers serve any task
        return ask.caller.role is Role.WORKER
    return _owns_run(ask, ask.session.get(m.FlowRun, task.flow_run_id))


def run_in_path(ask: Ask) -> bool:
    ref = ask.path.get("ref")
    run = _run(ask.session, ref)
    if run is None and ask.caller.role is Role.WORKER and ask.method == "GET":
        # a worker reading the run of a Job or container a dead worker left learns from
        # the 404 that the run is gone (and cleans up); a full id only, no prefix probing
        return _is_full_id(ref)
    return _owns_run(ask, run)


def run_or_ancestor_in_path(ask: Ask) -> bool:
    """The run is the caller's (``run_in_path``), or, for a run token, a run above its own:
    a child run answers the run that started it (``respond()``, ``send_input`` to
    ``parent_flow_run_id``) as Prefect's runs do, while unrelated runs stay out of reach."""
    if run_in_path(ask):
        return True
    if ask.caller.role is not Role.RUN:
        return False
    target = _run(ask.session, ask.path.get("ref"))
    own = ask.session.get(m.FlowRun, ask.caller.run_id) if ask.caller.run_id else None
    return target is not None and _below(ask.session, own, target.id)


def _is_full_id(ref: str | None) -> bool:
    try:
        return ref is not None and len(ref) == 36 and str(uuid.UUID(ref)) == ref.lower()
    except ValueError:
        return False


def task_run_in_path(ask: Ask) -> bool:
    return _owns_task_run(ask, ask.path.get("task_run_id"))


def pool_in_path(ask: Ask) -> bool:
    return serves(ask.caller, ask.path.get("pool_name") or ask.path.get("name"))


def pool_in_query(ask: Ask) -> bool:
    """A list narrowed to one of the caller's pools (``?pool=``): a worker reads its pools'
    workers and runs (to adopt or settle what a dead worker left), never the others'."""
    return serves(ask.caller, ask.query.get("pool"))


def pool_in_body(ask: Ask) -> bool:
    return isinstance(ask.body, dict) and serves(ask.caller, ask.body.get("name"))


def parent_in_body(ask: Ask) -> bool:
    """A child flow run: its parent task run must be one of the token's."""
    body = ask.body if isinstance(ask.body, dict) else {}
    return _owns_task_run(ask, body.get("parent_task_run_id"))


def child_deployment_run_in_body(ask: Ask) -> bool:
    """A deployment's run started from a flow run (``run_deployment``): a child of one of
    the token's task runs, on the deployment's own infrastructure settings: its job
    variables and priority stay an operator's to change."""
    body = ask.body if isinstance(ask.body, dict) else {}
    keeps_settings = not body.get("job_variables") and body.get("priority") is None
    return keeps_settings and parent_in_body(ask)


def _records_in_body(ask: Ask, task_field: str) -> bool:
    """Logs or task-run records: every run they name is the caller's, and every task run
    they name that exists already belongs to the run its entry names."""
    if not isinstance(ask.body, list) or not all(isinstance(e, dict) for e in ask.body):
        return False
    run_ids = {entry.get("flow_run_id") for entry in ask.body}
    if not all(_owns_run(ask, _run(ask.session, run_id)) for run_id in run_ids):
        return False
    for entry in ask.body:
        task_id = entry.get(task_field)
        task = ask.session.get(m.TaskRun, task_id) if isinstance(task_id, str) else None
        if task is not None and task.flow_run_id != entry.get("flow_run_id"):
            return False
    return True


def logs_in_body(ask: Ask) -> bool:
    if ask.caller.role is Role.WORKER and _background_logs(ask):
        return True
    return _records_in_body(ask, "task_run_id")


def _background_logs(ask: Ask) -> bool:
    """A task worker's logs of background runs under way, each sent to the flow run that
    made its run: any task worker serves any task, so the run, not a pool, decides."""
    if not isinstance(ask.body, list) or not ask.body:
        return False
    for entry in ask.body:
        task_id = entry.get("task_run_id") if isinstance(entry, dict) else None
        task = ask.session.get(m.TaskRun, task_id) if isinstance(task_id, str) else None
        if task is None or task.flow_run_id is not None or task.caller_flow_run_id is None:
            return False
        if task.caller_flow_run_id != entry.get("flow_run_id") or task.state_type.is_terminal:
            return False
    return True


def caller_in_body(ask: Ask) -> bool:
    """A background run naming the flow run that makes it: one of the caller's runs (a
    run token's own run or one below it; a worker key's pools'). Naming none, a task
    worker may make one (a run token may not)."""
    body = ask.body if isinstance(ask.body, dict) else {}
    caller = body.get("caller_flow_run_id")
    if caller is None:
        return ask.caller.role is Role.WORKER
    return _owns_run(ask, _run(ask.session, caller))


def task_runs_in_body(ask: Ask) -> bool:
    return _records_in_body(ask, "id")


def events_in_body(ask: Ask) -> bool:
    """A run token's events: any whose primary resource is not a server resource
    (``flowyard.…``), or is its own run, a run below it, or one of their task runs."""
    if not isinstance(ask.body, list) or not all(isinstance(e, dict) for e in ask.body):
        return False
    for entry in ask.body:
        resource = entry.get("resource")
        about = resource.get("flowyard.resource.id") if isinstance(resource, dict) else None
        if not isinstance(about, str) or not about.startswith("flowyard."):
            continue
        if about.startswith("flowyard.flow-run."):
            owned = _owns_run(ask, _run(ask.session, about.removeprefix("flowyard.flow-run.")))
        elif about.startswith("flowyard.task-run."):
            owned = _owns_task_run(ask, about.removeprefix("flowyard.task-run."))
        else:
            owned = False
        if not owned:
            return False
    return True


def artifact_in_body(ask: Ask) -> bool:
    """A run token's artifact for its run (the task run it names, when already recorded,
    is one of that run's: task-run records may reach the API after it); a worker key's for
    a background task run, whose code task workers run with their key."""
    body = ask.body if isinstance(ask.body, dict) else {}
    return _may_publish(ask, body.get("flow_run_id"), body.get("task_run_id"))


def artifact_in_path(ask: Ask) -> bool:
    """An artifact the caller may have published (see ``artifact_in_body``)."""
    artifact_id = ask.path.get("artifact_id")
    artifact = ask.session.get(m.Artifact, artifact_id) if artifact_id else None
    return artifact is not None and _may_publish(ask, artifact.flow_run_id, artifact.task_run_id)


def _may_publish(ask: Ask, run_id: Any, task_id: Any) -> bool:
    task = ask.session.get(m.TaskRun, task_id) if isinstance(task_id, str) else None
    if ask.caller.role is Role.WORKER:  # background task runs only
        return run_id is None and task is not None and task.flow_run_id is None
    if not _owns_run(ask, _run(ask.session, run_id)):
        return False
    return task is None or task.flow_run_id == run_id


def deployment_in_path(ask: Ask) -> bool:
    """A worker reads its pools' deployments; a run token its run's deployment."""
    try:
        deployment = get_deployment(ask.session, ask.path["ref"])
    except NotFound:
        return False
    if ask.caller.role is Role.WORKER:
        queue = deployment.queue
        return serves(ask.caller, queue.pool.name if queue else None)
    run = ask.session.get(m.FlowRun, ask.caller.run_id)
    return run is not None and run.deployment_id == deployment.id


def block_in_path(ask: Ask) -> bool:
    """A worker reads the blocks its pools' job templates and deployments refer to; a run
    token those its run's deployment refers to (pull steps, job variables) or names for its
    flow's code (``blocks``)."""
    wanted = f"{ask.path.get('slug')}/{ask.path.get('name')}"
    return wanted in referenced_blocks(ask)


def referenced_blocks(ask: Ask) -> set[str]:
    found: set[str] = set()
    if ask.caller.role is Role.WORKER:
        pools = ask.session.scalars(select(m.WorkPool))
        for pool in pools:
            if serves(ask.caller, pool.name):
                found |= references.needed(pool.base_job_template)
                for queue in pool.queues:
                    for deployment in ask.session.scalars(
                        select(m.Deployment).where(m.Deployment.queue_id == queue.id)
                    ):
                        found |= _deployment_blocks(deployment)
        return found
    run = ask.session.get(m.FlowRun, ask.caller.run_id)
    if run is not None and run.deployment is not None:
        found |= _deployment_blocks(run.deployment) | set(run.deployment.blocks or [])
    return found


def _deployment_blocks(deployment: m.Deployment) -> set[str]:
    found = references.needed(deployment.job_variables or {})
    for step in deployment.pull_steps or []:
        secret = step.get("access_token_secret") if isinstance(step, dict) else None
        if isinstance(secret, str):
            found.add(f"secret/{secret}")
    return found


BLOCKS_OF = {
    Role.WORKER: "its pools' job templates and deployments refer to",
    Role.RUN: "its deployment names (`blocks`, pull steps, job variables)",
}
PURE = {anything, pool_in_path, pool_in_query, pool_in_body}
"""Scopes decided from the request alone."""
