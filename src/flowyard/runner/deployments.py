"""Deployments from Python, as Prefect users write them (``flowyard.deployments``).

    etl_flow.deploy(name="nightly", work_pool_name="local", cron="0 3 * * *")
    etl_flow.serve(name="every-minute", interval=60)     # runs them itself, until stopped

    from flowyard.deployments import run_deployment
    run = run_deployment("etl/nightly", parameters={"day": "2026-11-26"}, timeout=600)
    assert run.state.type == "COMPLETED"

Everything goes through the API configured for this process (``FLOWYARD_API_URL``,
``FLOWYARD_API_KEY``). A deployed flow runs from the file it is defined in, loaded by its
function's name, so it must be a module-level function of a file.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from flowyard import schemas as s
from flowyard.errors import InvalidInput

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.sdk.flows import Flow

__all__ = ["deploy", "run_deployment", "serve"]


def run_deployment(
    name: str,
    parameters: dict[str, Any] | None = None,
    *,
    scheduled_time: datetime | None = None,
    flow_run_name: str | None = None,
    job_variables: dict[str, Any] | None = None,
    tags: Iterable[str] | None = None,
    timeout: float | None = None,
    poll_interval: float = 2.0,
    as_subflow: bool = True,
) -> s.FlowRun:
    """Create a run of deployment ``name`` ('flow/deployment' or id) and wait for its end.

    ``timeout=None`` waits as long as the run takes; ``timeout=0`` returns at once with the
    Scheduled run; otherwise the run as it is when the timeout passes (check its state).
    Parameters are checked by the API before anything is written (a bad one raises).
    The run's tags are ``tags`` and the deployment's. Called in a flow run, the new run is
    its child (``as_subflow``, as Prefect's; ``sdk/deployment_children.py``): a deployed
    flow's run token may start it only so, and only with the deployment's job variables.
    """
    from flowyard.client import FlowyardClient
    from flowyard.sdk import deployment_children
    from flowyard.settings import Settings

    parent = deployment_children.start_parent_task_run(name) if as_subflow else None
    request = s.DeploymentRunRequest(
        parameters=parameters or {},
        job_variables=job_variables or {},
        scheduled_time=scheduled_time,
        name=flow_run_name,
        tags=list(tags or []),
        parent_task_run_id=parent,
    )
    with FlowyardClient.from_settings(Settings()) as api:
        run = _wait(api, api.run_deployment(name, request), timeout, poll_interval)
    if parent is not None and run.state.type.is_terminal:
        deployment_children.finish_parent_task_run(parent, run.state.type, run.state.message)
    return run


def _wait(
    api: FlowyardClient, run: s.FlowRun, timeout: float | None, poll_interval: float
) -> s.FlowRun:
    """The run once final, or as it is when ``timeout`` (None: no limit) passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not run.state.type.is_terminal:
        if deadline is not None and time.monotonic() >= deadline:
            break
        left = poll_interval if deadline is None else deadline - time.monotonic()
        time.sleep(max(0.0, min(poll_interval, left)))
        run = api.read_flow_run(run.id)
    return run


def deploy(
    flow: Flow[..., Any],
    name: str,
    work_pool_name: str,
    *,
    work_queue_name: str | None = None,
    cron: str | None = None,
    interval: float | str | timedelta | None = None,
    rrule: str | None = None,
    timezone: str = "UTC",
    parameters: dict[str, Any] | None = None,
    job_variables: dict[str, Any] | None = None,
    tags: list[str] | None = None,
    description: str | None = None,
    version: str | None = None,
    image: str | None = None,
    concurrency_limit: int | None = None,
    collision_strategy: Literal["enqueue", "cancel-new"] = "enqueue",
    catch_up: Literal["all", "latest", "skip"] = "all",
    blocks: list[str] | None = None,
    triggers: list[Any] | None = None,
) -> str:
    """Create or update the deployment ``flow.name/name``; returns its id.

    ``triggers`` (``flowyard.automations.DeploymentEventTrigger`` and the like, or their
    dicts) become automations the deployment owns that run it; a list replaces those it
    had (``[]`` removes them), None leaves them as they are.

    ``blocks`` names the blocks (``TYPE/NAME``) the flow's code loads by name: on a server
    with API keys, a run may read only those (and what its job variables refer to).

    Checked by the API before anything is written: parameters against the flow's
    signature, job variables against the pool's template, the schedule's expression.
    """
    from flowyard.client import FlowyardClient
    from flowyard.sdk.parameters import parameter_schema
    from flowyard.settings import Settings

    path, entrypoint, pull_steps = _code_location(flow)
    variables = dict(job_variables or {})
    if image is not None:
        variables["image"] = image
    body = s.DeploymentCreate(
        name=name,
        flow_name=flow.name,
        entrypoint=entrypoint,
        path=path,
        pull_steps=pull_steps,
        pool_name=work_pool_name,
        queue_name=work_queue_name,
        parameters=parameters or {},
        parameter_schema=parameter_schema(flow.fn),
        job_variables=variables,
        tags=tags or [],
        blocks=blocks or [],
        description=description or flow.description or None,
        version=version or flow.version,
        concurrency_limit=concurrency_limit,
        collision_strategy=collision_strategy,
        catch_up=catch_up,
        schedules=_schedules(cron, interval, rrule, timezone),
    )
    with FlowyardClient.from_settings(Settings()) as api:
        deployment_id = api.create_deployment(body).id
        if triggers is not None:
            api.set_deployment_triggers(deployment_id, triggers)
        return deployment_id


def serve(
    flow: Flow[..., Any],
    name: str,
    *,
    limit: int | None = None,
    pool_name: str | None = None,
    **options: Any,
) -> None:
    """Deploy the flow and run its runs (scheduled or manual) here until stopped; the one-
    deployment case of ``flowyard.serve`` (see ``flowyard.runner.serving``). ``options``
    are ``Flow.to_deployment``'s: ``cron``/``interval``/``rrule``/``timezone``,
    ``parameters``, ``tags``, …

    Ctrl-C (or SIGTERM) stops claiming and lets running runs end; then the deployment is
    paused, so no scheduled run waits (and goes Late) for a process that is gone. Serving
    it again resumes it; ``flowyard deployment resume`` does too.
    """
    from flowyard.runner.serving import serve as serve_deployments

    serve_deployments(flow.to_deployment(name, **options), limit=limit, pool_name=pool_name)


def _code_location(flow: Flow[..., Any]) -> tuple[str | None, str, list[s.PullStep]]:
    """(folder, ``file.py:function``, pull steps): where a worker gets the flow's code."""
    if flow.source is not None:  # from_source
        return flow.source.path, flow.source.entrypoint, flow.source.pull_steps
    folder, entrypoint = _entrypoint(flow)
    return str(folder), entrypoint, []


def _entrypoint(flow: Flow[..., Any]) -> tuple[Path, str]:
    """(folder, ``file.py:function``) of a flow defined in this process's files."""
    fn = flow.fn
    if "<locals>" in fn.__qualname__:
        raise InvalidInput(
            f"flow {flow.name!r} is defined in a function; deploy a module-level one"
        )
    source = inspect.getsourcefile(fn)
    if source is None:
        raise InvalidInput(f"flow {flow.name!r} has no source file to deploy from")
    file = Path(source).resolve()
    return file.parent, f"{file.name}:{fn.__name__}"


def _schedules(
    cron: str | None, interval: float | str | timedelta | None, rrule: str | None, timezone: str
) -> list[s.ScheduleCreate] | None:
    given = [(k, v) for k, v in (("cron", cron), ("interval", interval), ("rrule", rrule)) if v]
    if len(given) > 1:
        raise InvalidInput("give at most one of cron, interval and rrule")
    if not given:
        return None
    kind, value = given[0]
    if isinstance(value, timedelta):
        value = value.total_seconds()
    expression = f"{value:g}" if isinstance(value, float | int) else str(value)
    return [s.ScheduleCreate(kind=kind, expression=expression, timezone=timezone)]  # type: ignore[arg-type]
