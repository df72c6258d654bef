"""Who may do what: one rule per route, checked for every request in one place.

Four kinds of caller (``auth.Role``): an **admin** key may do anything; a **viewer** key
reads everything but secrets and changes nothing; a **worker** key acts for the pools it
names (an unscoped worker key for every pool); a **run token** acts for one flow run (and
the child runs below it) and is read-only once that run is final.

``RULES`` holds a rule for every route of the API, keyed by the route's method and path
template; a route without one is closed to all but admins (and a test keeps the table
complete). A rule says whether viewers may call the route and, for worker keys and run
tokens, the *scope* that must hold (``scopes.py``): a small function that looks at the
resource the request names and decides from the store whether it is the caller's.
``guard`` runs as a dependency of every route, after ``api_keys`` identified the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session

from flowyard.errors import Forbidden
from flowyard.orchestrator import run_tokens as tokens
from flowyard.orchestrator.auth import KeyInfo, Role
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.orchestrator.scopes import (
    BLOCKS_OF,
    PURE,
    Ask,
    Scope,
    anything,
    artifact_in_body,
    artifact_in_path,
    block_in_path,
    caller_in_body,
    child_deployment_run_in_body,
    deployment_in_path,
    events_in_body,
    logs_in_body,
    parent_in_body,
    pool_in_body,
    pool_in_path,
    pool_in_query,
    run_in_path,
    run_or_ancestor_in_path,
    task_run_in_path,
    task_runs_in_body,
)
from flowyard.store import models as m

LOCAL = KeyInfo("local", Role.ADMIN)
"""The caller when the server has no API keys (loopback only): nothing to separate."""


@dataclass(frozen=True)
class Rule:
    """Who besides admins may call a route: viewers (reads only), and worker keys and run
    tokens within a scope (None: never)."""

    viewer: bool = False
    worker: Scope | None = None
    run: Scope | None = None
    needs_body: bool = False
    anyone: bool = False  # no credential needed: the web UI's sign-in and out, /health
    reads: bool = False  # a POST that only reads (a filter sent as a body): viewers may

    def writes(self, method: str) -> bool:
        return method != "GET" and not self.reads


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
    ("PATCH", "/api/deployments/{ref}"): ADMIN,
    ("DELETE", "/api/deployments/{ref}"): ADMIN,
    ("POST", "/api/deployments/{ref}/pause"): ADMIN,
    ("POST", "/api/deployments/{ref}/resume"): ADMIN,
    # a run token starts a deployment's run only as a child of one of its task runs
    # (run_deployment in a flow), with the deployment's job variables and priority
    ("POST", "/api/deployments/{ref}/runs"): Rule(
        run=child_deployment_run_in_body, needs_body=True
    ),
    ("POST", "/api/deployments/{ref}/runs/bulk"): ADMIN,
    ("GET", "/api/deployments/{ref}/schedules"): READ,
    ("POST", "/api/deployments/{ref}/schedules"): ADMIN,
    ("PATCH", "/api/deployments/{ref}/schedules/{schedule_id}"): ADMIN,
    ("DELETE", "/api/deployments/{ref}/schedules/{schedule_id}"): ADMIN,
    ("PUT", "/api/deployments/{ref}/triggers"): ADMIN,
    # automations: operators change them, viewers read them
    ("POST", "/api/automations"): ADMIN,
    ("GET", "/api/automations"): READ,
    ("GET", "/api/automations/{ref}"): READ,
    ("PUT", "/api/automations/{ref}"): ADMIN,
    ("PATCH", "/api/automations/{ref}"): ADMIN,
    ("DELETE", "/api/automations/{ref}"): ADMIN,
    ("GET", "/api/automations/{ref}/firings"): READ,
    # flow runs: workers act on their pools' runs (and list them by pool), a token on its own
    ("POST", "/api/flow_runs"): Rule(run=parent_in_body, needs_body=True),
    ("GET", "/api/flow_runs"): Rule(viewer=True, worker=pool_in_query),
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
    # suspending a run from outside: operators, or a run's own engine (and its subflows'),
    # never a worker (it runs flows, it does not decide when they stop) nor a viewer
    ("POST", "/api/flow_runs/{ref}/suspend"): Rule(run=run_in_path),
    ("POST", "/api/flow_runs/{ref}/resume"): ADMIN,
    # messages to a run (send_input): a run's token reads its own run's (and its subflows')
    # and writes to those and to the runs above it (a child answers its parent); an
    # unrelated run's inbox is an operator's to write to
    ("POST", "/api/flow_runs/{ref}/messages"): Rule(run=run_or_ancestor_in_path),
    ("POST", "/api/flow_runs/{ref}/messages/filter"): Rule(
        viewer=True, run=run_in_path, reads=True
    ),
    # a pause's input: the run reads what it was resumed with; workers have no need of it
    ("GET", "/api/flow_runs/{ref}/input/{key}"): Rule(viewer=True, run=run_in_path),
    # task runs and logs
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
    # artifacts: a run token publishes its run's; a worker key only a background task
    # run's (task workers run that code with their key; process workers run none)
    ("POST", "/api/artifacts"): Rule(
        worker=artifact_in_body, run=artifact_in_body, needs_body=True
    ),
    ("GET", "/api/artifacts"): READ,
    ("GET", "/api/artifacts/{artifact_id}"): Rule(
        viewer=True, worker=artifact_in_path, run=artifact_in_path
    ),
    ("PATCH", "/api/artifacts/{artifact_id}"): Rule(worker=artifact_in_path, run=artifact_in_path),
    ("DELETE", "/api/artifacts/{artifact_id}"): ADMIN,
    ("GET", "/api/artifacts/keys/{key}"): READ,
    ("DELETE", "/api/artifacts/keys/{key}"): ADMIN,
    # variables: operators write them; viewers and flows read them (a run may not change
    # what every other flow reads)
    ("POST", "/api/variables"): ADMIN,
    ("GET", "/api/variables"): Rule(viewer=True, run=anything),
    ("GET", "/api/variables/{name}"): Rule(viewer=True, run=anything),
    ("PATCH", "/api/variables/{name}"): ADMIN,
    ("DELETE", "/api/variables/{name}"): ADMIN,
    # background task runs: task workers serve tasks, not pools
    # ...and a flow run makes its own (its logs come back to it: caller_in_body)
    ("POST", "/api/background_task_runs"): Rule(
        worker=caller_in_body, run=caller_in_body, needs_body=True
    ),
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
    # events: anyone reads but workers and run tokens; a run token emits about its run
    ("POST", "/api/events"): Rule(run=events_in_body, needs_body=True),
    ("GET", "/api/events"): READ,
    ("GET", "/api/events/follow"): READ,
    ("GET", "/api/events/{event_id}"): READ,
    # incoming webhooks: viewers read them (never a secret); the hook itself is outside
    # /api, where no key is asked for: the webhook's own secret decides (api/webhooks.py)
    ("GET", "/api/webhooks"): READ,
    ("POST", "/api/webhooks"): ADMIN,
    ("GET", "/api/webhooks/{name}"): READ,
    ("PATCH", "/api/webhooks/{name}"): ADMIN,
    ("DELETE", "/api/webhooks/{name}"): ADMIN,
    ("POST", "/api/webhooks/{name}/rotate-secret"): ADMIN,
    ("POST", "/hooks/{slug}"): Rule(worker=anything, run=anything),
    # the server itself
    ("GET", "/api/api_keys"): READ,
    ("POST", "/api/api_keys"): ADMIN,
    ("DELETE", "/api/api_keys/{name}"): ADMIN,
    ("GET", "/api/health"): Rule(viewer=True, worker=anything, run=anything),
    ("GET", "/health"): Rule(anyone=True),  # probes and load balancers hold no key
    ("GET", "/metrics"): READ,
    # the web UI (flowyard.ui): its pages read; it changes things through the routes above
    ("GET", "/"): Rule(anyone=True),
    ("GET", "/ui/sign-in"): Rule(anyone=True),
    ("POST", "/ui/sign-in"): Rule(anyone=True),
    ("POST", "/ui/sign-out"): Rule(anyone=True),
    ("GET", "/ui/artifacts"): READ,
    ("GET", "/ui/artifacts/{key}"): READ,
    ("GET", "/ui/automations"): READ,
    ("GET", "/ui/automations/new"): READ,
    ("GET", "/ui/automations/{ref}"): READ,
    ("GET", "/ui/automations/{ref}/edit"): READ,
    ("GET", "/ui/events"): READ,
    ("GET", "/ui/runs"): READ,
    ("GET", "/ui/runs/{ref}"): READ,
    ("GET", "/ui/runs/{ref}/logs.txt"): READ,
    ("GET", "/ui/stream"): READ,
    ("GET", "/ui/"): READ,
    ("GET", "/ui/pools"): READ,
    ("GET", "/ui/pools/{name}"): READ,
    ("GET", "/ui/deployments"): READ,
    ("GET", "/ui/deployments/{ref}"): READ,
    ("GET", "/ui/concurrency-limits"): READ,
    ("GET", "/ui/variables"): READ,
    ("GET", "/ui/blocks"): READ,
    ("GET", "/ui/blocks/new"): READ,
    ("GET", "/ui/blocks/{slug}/{name}"): READ,
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


def decide(rule: Rule, ask: Ask, route: str) -> str | None:
    """None when ``ask.caller`` may make the request ``rule`` governs, else why not."""
    caller = ask.caller
    if caller.role is Role.ADMIN or rule.anyone:
        return None
    verb = f"{ask.method} {route}"
    if caller.role is Role.VIEWER:
        viewer = f"API key {caller.name!r} is a viewer key"
        if not rule.viewer or rule.writes(ask.method):
            return f"{viewer}: it may only read, not {verb}"
        return f"{viewer}: it reads secrets masked only" if _reveals_secrets(ask) else None
    scope = rule.worker if caller.role is Role.WORKER else rule.run
    if scope is None:
        return f"{_describe(caller)} cannot {verb}"
    if caller.role is Role.RUN and rule.writes(ask.method) and (spent := _token_spent(ask)):
        return f"the run token for flow run {caller.run_id} may only read: {spent}"
    return None if scope(ask) else _out_of_scope(scope, caller)


def _out_of_scope(scope: Scope, caller: KeyInfo) -> str:
    """Why a worker key or run token may not make a request outside its scope."""
    if scope is block_in_path:
        return f"{_describe(caller)} may only read the blocks {BLOCKS_OF[caller.role]}"
    if scope in (artifact_in_body, artifact_in_path) and caller.role is Role.WORKER:
        return f"{_describe(caller)} may only publish artifacts of background task runs"
    if scope is child_deployment_run_in_body:
        return (
            f"{_describe(caller)} starts a deployment's run only as a child of its own "
            "task runs, with the deployment's job variables and priority"
        )
    if caller.role is Role.RUN:
        return f"{_describe(caller)} may only act for its own flow run and the runs below it"
    pools = ", ".join(caller.pools) or "(none)"
    return f"API key {caller.name!r} may only serve the pools {pools}"


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
        except (ValueError, RecursionError):  # FastAPI refuses such a body before the route
            body = None
    orch: Orchestrator = request.app.state.orchestrator
    path_params, query = dict(request.path_params), dict(request.query_params)

    def check(session: Session | None) -> str | None:
        ask = Ask(caller, request.method, path_params, query, body, session)
        return decide(rule, ask, path)

    def check_in_store() -> str | None:
        with orch.db.read() as session:
            return check(session)

    # claims and worker heartbeats name their pool in the path: no store read, no thread
    pure = caller.role is not Role.RUN and (rule.worker in PURE or caller.role is Role.VIEWER)
    reason = check(None) if pure else await orch.in_thread(check_in_store)
    if reason is not None:
        raise Forbidden(reason)
