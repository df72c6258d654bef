"""Who may do what: one rule per route, checked for every request in one place.

Four kinds of caller (``auth.Role``): an **admin** key may do anything; a **viewer** key
reads everything but secrets and changes nothing; a **worker** key acts for the pools it
names (an unscoped worker key for every pool); a **run token** acts for one flow run (and
the child runs below it) and is read-only once that run is final.

``RULES`` holds a rule for every route of the API, keyed by the route's method and path
template; a route without one is closed to all but admins (and a test keeps the table
complete). A rule says whether viewers may call the route and, for worker keys and run
tokens, the *scope* that must hold: a small function that looks at the resource the request
names (in its path, query or body) and decides from the store whether it is the caller's.
``guard`` runs as a dependency of every route, after ``api_keys`` identified the caller.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard.blocks import references
from flowyard.errors import Forbidden, NotFound
from flowyard.orchestrator import run_tokens as tokens
from flowyard.orchestrator import runs
from flowyard.orchestrator.auth import KeyInfo, Role
from flowyard.orchestrator.lookups import get_deployment
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.store import models as m

LOCAL = KeyInfo("local", Role.ADMIN)
"""The caller when the server has no API keys (loopback only): nothing to separate."""
MAX_CHILD_DEPTH = 16
"""How far below the token's run a child run may sit."""


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


@dataclass(frozen=True)
class Rule:
    """Who besides admins may call a route: viewers (reads only), and worker keys and run
    tokens within a scope (None: never)."""

    viewer: bool = False
    worker: Scope | None = None
    run: Scope | None = None
    needs_body: bool = False


# -- scopes: is the named resource the caller's? -----------------------------------------


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
        parent = session.get(m.TaskRun, run.parent_task_run_id) if run.parent_task_run_id else None
        run = session.get(m.FlowRun, parent.flow_run_id) if parent and parent.flow_run_id else None
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
    return _owns_run(ask, _run(ask.session, ask.path.get("ref")))


def task_run_in_path(ask: Ask) -> bool:
    return _owns_task_run(ask, ask.path.get("task_run_id"))


def pool_in_path(ask: Ask) -> bool:
    return serves(ask.caller, ask.path.get("pool_name") or ask.path.get("name"))


def pool_in_query(ask: Ask) -> bool:
    return serves(ask.caller, ask.query.get("pool"))


def pool_in_body(ask: Ask) -> bool:
    return isinstance(ask.body, dict) and serves(ask.caller, ask.body.get("name"))


def run_in_body(ask: Ask) -> bool:
    body = ask.body if isinstance(ask.body, dict) else {}
    return _owns_run(ask, _run(ask.session, body.get("flow_run_id")))


def parent_in_body(ask: Ask) -> bool:
    """A child flow run: its parent task run must be one of the token's."""
    body = ask.body if isinstance(ask.body, dict) else {}
    return _owns_task_run(ask, body.get("parent_task_run_id"))


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
    return _records_in_body(ask, "task_run_id")


def task_runs_in_body(ask: Ask) -> bool:
    return _records_in_body(ask, "id")


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
    token those its run's deployment refers to (pull steps, job variables)."""
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
        found |= _deployment_blocks(run.deployment)
    return found


def _deployment_blocks(deployment: m.Deployment) -> set[str]:
    found = references.needed(deployment.job_variables or {})
    for step in deployment.pull_steps or []:
        secret = step.get("access_token_secret") if isinstance(step, dict) else None
        if isinstance(secret, str):
            found.add(f"secret/{secret}")
    return found


PURE = {anything, pool_in_path, pool_in_query, pool_in_body}
"""Scopes decided from the request alone."""

# -- the table ---------------------------------------------------------------------------

READ = Rule(viewer=True)
ADMIN = Rule()
WORKER_POOL = Rule(viewer=True, worker=pool_in_path)
RUN_READ = Rule(viewer=True, worker=run_in_path, run=run_in_path)
RUN_WRITE = Rule(worker=run_in_path, run=run_in_path)

RULES: dict[tuple[str, str], Rule] = {
    # pools and queues: operators change them; a worker reads and creates its own
    ("GET", "/api/work_pools"): READ,
    ("POST", "/api/work_pools"): Rule(worker=pool_in_body, needs_body=True),
    ("GET", "/api/work_pools/{name}"): WORKER_POOL,
    ("PATCH", "/api/work_pools/{name}"): ADMIN,
    ("DELETE", "/api/work_pools/{name}"): ADMIN,
    ("GET", "/api/work_pools/{pool_name}/queues"): WORKER_POOL,
    ("POST", "/api/work_pools/{pool_name}/queues"): ADMIN,
    ("GET", "/api/work_pools/{pool_name}/queues/{name}"): WORKER_POOL,
    ("PATCH", "/api/work_pools/{pool_name}/queues/{name}"): ADMIN,
    ("DELETE", "/api/work_pools/{pool_name}/queues/{name}"): ADMIN,
    ("POST", "/api/work_pools/{pool_name}/claim"): Rule(worker=pool_in_path),
    ("POST", "/api/work_pools/{pool_name}/workers/heartbeat"): Rule(worker=pool_in_path),
    ("GET", "/api/workers"): Rule(viewer=True, worker=pool_in_query),
    # deployments and their schedules
    ("GET", "/api/deployments"): READ,
    ("POST", "/api/deployments"): ADMIN,
    ("GET", "/api/deployments/{ref}"): Rule(
        viewer=True, worker=deployment_in_path, run=deployment_in_path
    ),
    ("POST", "/api/deployments/{ref}/pause"): ADMIN,
    ("POST", "/api/deployments/{ref}/resume"): ADMIN,
    ("POST", "/api/deployments/{ref}/runs"): ADMIN,
    ("GET", "/api/deployments/{ref}/schedules"): READ,
    ("POST", "/api/deployments/{ref}/schedules"): ADMIN,
    ("PATCH", "/api/deployments/{ref}/schedules/{schedule_id}"): ADMIN,
    ("DELETE", "/api/deployments/{ref}/schedules/{schedule_id}"): ADMIN,
    # flow runs: workers act on their pools' runs, a token on its own
    ("POST", "/api/flow_runs"): Rule(run=parent_in_body, needs_body=True),
    ("GET", "/api/flow_runs"): READ,
    ("GET", "/api/flow_runs/{ref}"): RUN_READ,
    ("GET", "/api/flow_runs/{ref}/history"): RUN_READ,
    ("GET", "/api/flow_runs/{ref}/graph"): RUN_READ,
    ("GET", "/api/flow_runs/{ref}/task_runs"): RUN_READ,
    ("GET", "/api/flow_runs/{ref}/logs"): RUN_READ,
    ("POST", "/api/flow_runs/{ref}/state"): RUN_WRITE,
    ("POST", "/api/flow_runs/{ref}/heartbeat"): RUN_WRITE,
    ("POST", "/api/flow_runs/{ref}/infrastructure"): RUN_WRITE,
    ("PUT", "/api/flow_runs/{ref}/result"): Rule(run=run_in_path),
    ("POST", "/api/flow_runs/{ref}/token"): Rule(worker=run_in_path),
    ("POST", "/api/flow_runs/{ref}/cancel"): ADMIN,
    ("POST", "/api/flow_runs/{ref}/resume"): ADMIN,
    # task runs and logs
    ("POST", "/api/task_runs"): Rule(worker=run_in_body, run=run_in_body, needs_body=True),
    ("POST", "/api/task_runs/bulk"): Rule(
        worker=task_runs_in_body, run=task_runs_in_body, needs_body=True
    ),
    ("GET", "/api/task_runs/{task_run_id}"): Rule(
        viewer=True, worker=task_run_in_path, run=task_run_in_path
    ),
    ("POST", "/api/task_runs/{task_run_id}/state"): Rule(
        worker=task_run_in_path, run=task_run_in_path
    ),
    ("POST", "/api/logs"): Rule(worker=logs_in_body, run=logs_in_body, needs_body=True),
    # background task runs: task workers serve tasks, not pools
    ("POST", "/api/background_task_runs"): Rule(worker=anything),
    ("POST", "/api/background_task_runs/claim"): Rule(worker=anything),
    ("POST", "/api/background_task_runs/heartbeat"): Rule(worker=anything),
    ("POST", "/api/background_task_runs/{run_id}/state"): Rule(worker=anything),
    ("GET", "/api/background_task_runs/{run_id}/wait"): Rule(viewer=True, worker=anything),
    # blocks: secrets only to those whose work refers to them
    ("GET", "/api/block_types"): Rule(viewer=True, worker=anything, run=anything),
    ("GET", "/api/blocks"): READ,
    ("POST", "/api/blocks"): ADMIN,
    ("GET", "/api/blocks/{slug}/{name}"): Rule(
        viewer=True, worker=block_in_path, run=block_in_path
    ),
    ("PUT", "/api/blocks/{slug}/{name}"): ADMIN,
    ("DELETE", "/api/blocks/{slug}/{name}"): ADMIN,
    # tag concurrency: slots for the task runs a caller runs
    ("GET", "/api/concurrency_limits"): READ,
    ("POST", "/api/concurrency_limits"): ADMIN,
    ("GET", "/api/concurrency_limits/{tag}"): READ,
    ("DELETE", "/api/concurrency_limits/{tag}"): ADMIN,
    ("POST", "/api/concurrency_limits/acquire"): Rule(worker=anything, run=anything),
    ("POST", "/api/concurrency_limits/renew"): Rule(worker=anything, run=anything),
    ("POST", "/api/concurrency_limits/release"): Rule(worker=anything, run=anything),
    ("GET", "/api/concurrency_limits/{tag}/holders"): READ,
    ("POST", "/api/concurrency_limits/{tag}/reset"): ADMIN,
    # the server itself
    ("GET", "/api/api_keys"): READ,
    ("POST", "/api/api_keys"): ADMIN,
    ("DELETE", "/api/api_keys/{name}"): ADMIN,
    ("GET", "/api/health"): Rule(viewer=True, worker=anything, run=anything),
    ("GET", "/metrics"): READ,
}


# -- the check ---------------------------------------------------------------------------


@dataclass
class FinalRuns:
    """Runs known to be final (a final run never changes again), so that a token's writes
    after its run ended cost one store read, not one per request."""

    known: set[str] = field(default_factory=set)

    def add(self, run_id: str) -> None:
        if len(self.known) > 100_000:
            self.known.clear()
        self.known.add(run_id)


_final_runs = FinalRuns()


def decide(rule: Rule, ask: Ask) -> str | None:
    """None when ``ask.caller`` may make the request ``rule`` governs, else why not."""
    caller = ask.caller
    if caller.role is Role.ADMIN:
        return None
    verb = f"{ask.method} this route"
    if caller.role is Role.VIEWER:
        if rule.viewer and ask.method == "GET" and not _reveals_secrets(ask):
            return None
        return f"API key {caller.name!r} is a viewer key: it may read, not {verb}"
    scope = rule.worker if caller.role is Role.WORKER else rule.run
    if scope is None:
        return f"{_describe(caller)} cannot {verb}"
    if caller.role is Role.RUN and ask.method != "GET" and (spent := _token_spent(ask)):
        return f"the run token for flow run {caller.run_id} may only read: {spent}"
    if not scope(ask):
        if caller.role is Role.RUN:
            return f"{_describe(caller)} may only act for its own flow run and the runs below it"
        pools = ", ".join(caller.pools) or "(none)"
        return f"API key {caller.name!r} may only serve the pools {pools}"
    return None


def _reveals_secrets(ask: Ask) -> bool:
    return ask.query.get("include_secrets", "").lower() in ("1", "true", "yes", "on")


def _token_spent(ask: Ask) -> str | None:
    """Why a run token may no longer write: its run is final, or the claim it was minted
    under was taken back (None while it may)."""
    run_id = ask.caller.run_id or ""
    if run_id in _final_runs.known:
        return "its run is final"
    run = ask.session.get(m.FlowRun, run_id)
    if run is None or run.state_type.is_terminal:
        _final_runs.add(run_id)
        return "its run is final"
    claim = ask.caller.claim
    if claim is not None and claim != tokens.claim_fingerprint(run.claim_token):
        return "the claim it was minted under was taken back"
    return None


def _describe(caller: KeyInfo) -> str:
    if caller.role is Role.RUN:
        return f"the run token for flow run {caller.run_id}"
    pools = ", ".join(caller.pools) if caller.pools else "every pool"
    return f"worker key {caller.name!r} (pools: {pools})"


async def guard(request: Request) -> None:
    """The dependency every route has: refuse (403) what the caller's rule does not allow."""
    caller: KeyInfo = getattr(request.state, "api_key", None) or LOCAL
    if caller.role is Role.ADMIN:
        return
    route = request.scope.get("route")
    path = route.path_format if isinstance(route, APIRoute) else request.url.path
    rule = RULES.get((request.method, path))
    if rule is None:
        raise Forbidden(f"{request.method} {path} is for admin keys only")
    body: Any = None
    if rule.needs_body:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
    orch: Orchestrator = request.app.state.orchestrator
    path_params, query = dict(request.path_params), dict(request.query_params)

    def check(session: Session | None) -> str | None:
        return decide(rule, Ask(caller, request.method, path_params, query, body, session))

    def check_in_store() -> str | None:
        with orch.db.read() as session:
            return check(session)

    # claims and worker heartbeats name their pool in the path: no store read, no thread
    pure = caller.role is not Role.RUN and (rule.worker in PURE or caller.role is Role.VIEWER)
    reason = check(None) if pure else await orch.in_thread(check_in_store)
    if reason is not None:
        raise Forbidden(reason)
