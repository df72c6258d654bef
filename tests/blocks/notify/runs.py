"""A flow run and its deployment as documents, for rendering messages without a server."""

from __future__ import annotations

from datetime import UTC, datetime

from flowyard import schemas as s
from flowyard.states import StateType

AT = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def deployment() -> s.Deployment:
    return s.Deployment(
        id="dep-1",
        name="nightly",
        flow_id="flow-1",
        flow_name="etl",
        entrypoint="flows.py:etl",
        path=None,
        pool_name="prod",
        queue_name="default",
        parameters={},
        parameter_schema=None,
        job_variables={},
        tags=["team-data", "critical"],
        description=None,
        version="1.2",
        created=AT,
        updated=AT,
    )


def failed_run(deployment_id: str | None = "dep-1") -> s.FlowRun:
    return s.FlowRun(
        id="run-1",
        name="brave-otter",
        flow_id="flow-1",
        flow_name="etl",
        deployment_id=deployment_id,
        deployment_name="nightly" if deployment_id else None,
        pool_name="prod",
        queue_name="default",
        parameters={"day": "2026-12-06", "limit": 5},
        job_variables={},
        state=s.StateDoc(
            type=StateType.FAILED, name="Failed", message="ValueError: bad row", timestamp=AT
        ),
        scheduled_time=AT,
        start_time=AT,
        end_time=AT,
        worker_name="w1",
        infrastructure_id=None,
        created=AT,
    )
