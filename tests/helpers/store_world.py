"""Pools, queues, deployments and runs written straight into a store, for the tests of
what reads them (metric triggers, automations)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from flowyard.orchestrator.automations.metric_triggers import MetricChange, evaluate
from flowyard.schemas.automations import MetricTrigger
from flowyard.states import StateType
from flowyard.store import Database
from flowyard.store import models as m

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
"""The world's clock starts here."""


class World:
    """Pools, queues, deployments and runs, written straight into the store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        with db.session() as session:
            flow = m.Flow(name="etl")
            session.add(flow)
            session.flush()
            self.flow_id = flow.id

    def pool(self, name: str, queues: tuple[str, ...] = ("default",)) -> list[str]:
        """A pool and its queues; returns [pool id, queue ids…]."""
        with self.db.session() as session:
            pool = m.WorkPool(name=name, type="process")
            pool.queues = [m.WorkQueue(name=q) for q in queues]
            session.add(pool)
            session.flush()
            return [pool.id, *(q.id for q in pool.queues)]

    def deployment(self, name: str, queue_id: str) -> str:
        with self.db.session() as session:
            dep = m.Deployment(
                flow_id=self.flow_id, name=name, entrypoint="f.py:f", queue_id=queue_id
            )
            session.add(dep)
            session.flush()
            return dep.id

    def run(
        self,
        state: StateType,
        *,
        deployment: str | None = None,
        queue: str | None = None,
        scheduled: datetime = T0,
        started: datetime | None = None,
        ended: datetime | None = None,
        name: str | None = None,
        claim: str | None = None,
    ) -> None:
        if deployment is not None and queue is None:
            with self.db.read() as session:
                queue = session.get(m.Deployment, deployment).queue_id
        with self.db.session() as session:
            session.add(
                m.FlowRun(
                    name="run",
                    flow_id=self.flow_id,
                    deployment_id=deployment,
                    queue_id=queue,
                    state_type=state,
                    state_name=name or state.display_name,
                    state_timestamp=ended or started or scheduled,
                    scheduled_time=scheduled,
                    start_time=started,
                    end_time=ended,
                    claim_token=claim,
                )
            )

    def ended(self, state: StateType, deployment: str, at: datetime, ran: float = 10.0) -> None:
        started = at - timedelta(seconds=ran)
        self.run(state, deployment=deployment, scheduled=started, started=started, ended=at)

    def evaluate(
        self, trigger: MetricTrigger, now: datetime, path: str = "0"
    ) -> list[MetricChange]:
        with self.db.session() as session:
            return evaluate(session, "auto", path, trigger, now)

    def states(self) -> list[tuple[str, bool, float | None, datetime]]:
        with self.db.read() as session:
            rows = session.scalars(select(m.AutomationMetricState)).all()
            return sorted((r.resource_id, r.firing, r.value, r.since) for r in rows)
