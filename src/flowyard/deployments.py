"""Running a deployment from Python: ``run_deployment``, as Prefect users write it.

    from flowyard.deployments import run_deployment

    run = run_deployment("etl/nightly", parameters={"day": "2026-11-26"}, timeout=600)
    assert run.state.type == "COMPLETED"

The run is created through the API configured for this process (``FLOWYARD_API_URL``,
``FLOWYARD_API_KEY``) and queued like any other; a worker of the deployment's pool runs it.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from flowyard import schemas as s

__all__ = ["run_deployment"]


def run_deployment(
    name: str,
    parameters: dict[str, Any] | None = None,
    *,
    scheduled_time: datetime | None = None,
    flow_run_name: str | None = None,
    job_variables: dict[str, Any] | None = None,
    timeout: float | None = None,
    poll_interval: float = 2.0,
) -> s.FlowRun:
    """Create a run of deployment ``name`` ('flow/deployment' or id) and wait for its end.

    ``timeout=None`` waits as long as the run takes; ``timeout=0`` returns at once with the
    Scheduled run; otherwise the run as it is when the timeout passes (check its state).
    Parameters are checked by the API before anything is written (a bad one raises).
    """
    from flowyard.client import FlowyardClient
    from flowyard.settings import Settings

    request = s.DeploymentRunRequest(
        parameters=parameters or {},
        job_variables=job_variables or {},
        scheduled_time=scheduled_time,
        name=flow_run_name,
    )
    with FlowyardClient.from_settings(Settings()) as api:
        run = api.run_deployment(name, request)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not run.state.type.is_terminal:
            if deadline is not None and time.monotonic() >= deadline:
                break
            pause = (
                poll_interval
                if deadline is None
                else min(poll_interval, deadline - time.monotonic())
            )
            time.sleep(max(0.0, pause))
            run = api.read_flow_run(run.id)
        return run
