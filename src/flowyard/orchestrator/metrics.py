"""Prometheus metrics of the API: queue depth, slots in use, runs by state, late runs, claims.

Gauges are read at scrape time from Redis and the store (so every API replica reports the
same truth); the claim-latency histogram and the claim counter are this replica's own.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from starlette.types import ASGIApp, Receive, Scope, Send

from flowyard.states import StateType
from flowyard.store import models as m

if TYPE_CHECKING:
    from flowyard.orchestrator.runtime import Orchestrator

LATE_AFTER = timedelta(seconds=15)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ApiMetrics:
    """One registry per API process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("pool", "queue")
        self.ready = Gauge(
            "flowyard_queue_ready_runs", "Runs waiting in a queue", labels, registry=self.registry
        )
        self.queue_slots = Gauge(
            "flowyard_queue_slots_in_use",
            "Runs holding a queue's slots",
            labels,
            registry=self.registry,
        )
        self.pool_slots = Gauge(
            "flowyard_pool_slots_in_use",
            "Runs holding a pool's slots",
            ("pool",),
            registry=self.registry,
        )
        self.runs = Gauge(
            "flowyard_flow_runs", "Flow runs by state", ("state",), registry=self.registry
        )
        self.late = Gauge(
            "flowyard_late_runs",
            "Scheduled runs more than 15 s past due",
            ("pool",),
            registry=self.registry,
        )
        self.claims_waiting = Gauge(
            "flowyard_claims_waiting",
            "Claim long-polls open on this API process",
            ("pool",),
            registry=self.registry,
        )
        self.claims = Counter(
            "flowyard_claims", "Runs claimed by workers", ("pool",), registry=self.registry
        )
        self.claim_latency = Histogram(
            "flowyard_claim_latency_seconds",
            "From a run being due to its claim",
            ("pool",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

        self.requests = Counter(
            "flowyard_api_requests",
            "API requests that reached a route on this process, by method and path template",
            ("route",),
            registry=self.registry,
        )

    def observe_claim(self, pool: str, due: datetime, now: datetime) -> None:
        self.claims.labels(pool).inc()
        self.claim_latency.labels(pool).observe(max(0.0, (now - due).total_seconds()))

    async def render(self, orch: Orchestrator) -> bytes:
        """Refresh the gauges from Redis and the store, then render the text format."""
        pools, by_state, late = await orch.in_thread(_read_store, orch)
        for gauge in (self.ready, self.queue_slots, self.pool_slots, self.runs, self.late):
            gauge.clear()
        self.claims_waiting.clear()
        for pool, queues in pools.items():
            self.claims_waiting.labels(pool).set(orch.open_claims.count(pool))
            self.pool_slots.labels(pool).set(await orch.queues.running_count(pool))
            self.late.labels(pool).set(late.get(pool, 0))
            for queue in queues:
                self.ready.labels(pool, queue).set(await orch.queues.depth(pool, queue))
                self.queue_slots.labels(pool, queue).set(
                    await orch.queues.running_count(pool, queue)
                )
        for state in StateType:
            self.runs.labels(state.value).set(by_state.get(state, 0))
        return generate_latest(self.registry)


def _read_store(
    orch: Orchestrator,
) -> tuple[dict[str, list[str]], dict[StateType, int], dict[str, int]]:
    cutoff = datetime.now(UTC) - LATE_AFTER
    with orch.db.read() as session:
        pools: dict[str, list[str]] = {}
        for pool, queue in session.execute(
            select(m.WorkPool.name, m.WorkQueue.name).join(m.WorkQueue).order_by(m.WorkPool.name)
        ):
            pools.setdefault(pool, []).append(queue)
        by_state = dict(
            session.execute(
                select(m.FlowRun.state_type, func.count()).group_by(m.FlowRun.state_type)
            ).all()
        )
        late = dict(
            session.execute(
                select(m.WorkPool.name, func.count())
                .select_from(m.FlowRun)
                .join(m.WorkQueue, m.FlowRun.queue_id == m.WorkQueue.id)
                .join(m.WorkPool)
                .where(
                    m.FlowRun.state_type == StateType.SCHEDULED,
                    m.FlowRun.scheduled_time < cutoff,
                    m.FlowRun.claim_token.is_(None),  # retries waiting in-process are not late
                )
                .group_by(m.WorkPool.name)
            ).all()
        )
    return pools, by_state, late


class RequestCounter:
    """ASGI middleware: counts each request that reached the routes under its route's
    template (what a run costs the API in requests: bench/flow_runs.py reads it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        try:
            await self.app(scope, receive, send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "(no route)"
            orch = getattr(scope["app"].state, "orchestrator", None)  # None before startup
            if orch is not None:
                orch.metrics.requests.labels(f"{scope['method']} {template}").inc()
