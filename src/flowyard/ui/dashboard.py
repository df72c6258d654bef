"""The dashboard (``/ui/``): how the last day (or week) went, and how the pools are now.

Every figure comes from a bounded query: runs by state and by bar of the chart from one
grouped count over the window by the ``(state_type, scheduled_time)`` index (a run counts
in the window its scheduled time falls in: when it was due, or asked for); the latest
failures and late runs through the same index, a few at a time; pools' health from
``pool_view``; queue depths and slots in use from the pools' Redis (one ``ZCARD`` each,
for the first ``QUEUES``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from flowyard.errors import QueueUnavailable
from flowyard.orchestrator import documents
from flowyard.orchestrator.runtime import Orch, Orchestrator
from flowyard.states import StateType
from flowyard.store import models as m
from flowyard.ui import pool_view, views

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}
SHOWN = 10  # failures, late runs and busiest queues listed
QUEUES = 500  # queues whose depth is asked of Redis at most
BAD = (StateType.FAILED, StateType.CRASHED)


@dataclass
class QueueLoad:
    pool: str
    queue: str
    waiting: int
    running: int


BARS = 24  # the chart's bars: an hour each over a day, seven hours over a week
CHART_HEIGHT = 120  # the chart's drawing height (SVG units; the page scales it)
BAR_WIDTH = 20


@dataclass
class Segment:
    state: str
    count: int
    y: float
    height: float


@dataclass
class Bar:
    start: datetime
    x: int
    total: int
    segments: list[Segment]


def _edges(since: datetime, now: datetime) -> list[datetime]:
    step = (now - since) / BARS
    return [since + step * i for i in range(BARS)] + [now]


def chart(edges: list[datetime], counted: dict[tuple[StateType, int], int]) -> list[Bar]:
    """Stacked bars of runs by state, scaled to the fullest bar (drawn as SVG: the page's
    Content-Security-Policy allows no inline styles)."""
    totals = [sum(c for (_, b), c in counted.items() if b == bar) for bar in range(BARS)]
    scale = CHART_HEIGHT / max(max(totals), 1)
    bars = []
    for bar in range(BARS):
        y, segments = float(CHART_HEIGHT), []
        for state in StateType:
            count = counted.get((state, bar), 0)
            if count:
                y -= count * scale
                segments.append(Segment(state.value, count, round(y, 2), round(count * scale, 2)))
        bars.append(Bar(edges[bar], bar * BAR_WIDTH, totals[bar], segments))
    return bars


def read_runs(session: Session, since: datetime, now: datetime) -> dict[str, Any]:
    """Runs due in the window by state, its latest failures and crashes, and late runs."""
    in_window = (m.FlowRun.scheduled_time >= since, m.FlowRun.scheduled_time <= now)
    edges = _edges(since, now)
    slot = case(
        *((m.FlowRun.scheduled_time < edge, index) for index, edge in enumerate(edges[1:])),
        else_=len(edges) - 2,
    )  # which bar of the chart a run falls in, computed by the database (any dialect)
    counted: dict[tuple[StateType, int], int] = {
        (state, int(bar)): int(count)
        for state, bar, count in session.execute(
            select(m.FlowRun.state_type, slot, func.count())
            .where(m.FlowRun.state_type.in_(list(StateType)), *in_window)
            .group_by(m.FlowRun.state_type, slot)
        ).all()
    }
    failures = session.scalars(
        select(m.FlowRun)
        .where(m.FlowRun.state_type.in_(BAD), *in_window)
        .order_by(m.FlowRun.scheduled_time.desc())
        .limit(SHOWN)
    ).all()
    late_query = select(m.FlowRun.id).where(
        m.FlowRun.state_type == StateType.SCHEDULED,
        m.FlowRun.scheduled_time <= now,
        m.FlowRun.state_name == pool_view.LATE,
    )
    late_count = session.scalar(
        select(func.count()).select_from(late_query.limit(pool_view.COUNT_CAP + 1).subquery())
    )
    late = session.scalars(
        select(m.FlowRun)
        .where(m.FlowRun.id.in_(late_query.order_by(m.FlowRun.scheduled_time).limit(SHOWN)))
        .order_by(m.FlowRun.scheduled_time)
    ).all()
    by_state = {t.value: 0 for t in StateType}
    for (state, _), count in counted.items():
        by_state[state.value] += count
    return {
        "by_state": by_state,
        "chart": chart(edges, counted),
        "total": sum(by_state.values()),
        "failures": [documents.flow_run(r) for r in failures],
        "late": [documents.flow_run(r) for r in late],
        "late_count": int(late_count or 0),
    }


async def busiest_queues(orch: Orchestrator, names: list[tuple[str, str]]) -> list[QueueLoad]:
    """The queues with the most waiting runs (Redis: the truth of what a claim sees)."""

    async def load(pool: str, queue: str) -> QueueLoad:
        waiting = await orch.queues.depth(pool, queue)
        running = await orch.queues.running_count(pool, queue)
        return QueueLoad(pool, queue, waiting, running)

    found = await asyncio.gather(*(load(p, q) for p, q in names))
    ranked = sorted(found, key=lambda q: (-q.waiting, -q.running, q.pool, q.queue))
    return [q for q in ranked if q.waiting or q.running][:SHOWN]


async def dashboard_page(request: Request, orch: Orch) -> Response:
    window = request.query_params.get("window", "24h")
    if window not in WINDOWS:
        window = "24h"
    now = datetime.now(UTC)
    since = now - WINDOWS[window]
    beat = orch.settings.worker_heartbeat_seconds

    def read() -> dict[str, Any]:
        with orch.db.read() as session:
            queues = session.execute(
                select(m.WorkPool.name, m.WorkQueue.name)
                .join(m.WorkQueue, m.WorkQueue.pool_id == m.WorkPool.id)
                .order_by(m.WorkPool.name, m.WorkQueue.name)
                .limit(QUEUES)
            ).all()
            return {
                **read_runs(session, since, now),
                "pools": pool_view.read_pools(session, beat),
                "queue_names": [(p, q) for p, q in queues],
            }

    data = await orch.in_thread(read)
    try:
        busiest: list[QueueLoad] | None = await busiest_queues(orch, data.pop("queue_names"))
    except QueueUnavailable:
        busiest = None  # the page says the queues are unavailable
    slots = sum(p.running for p in data["pools"])
    context = views.page_context(
        request,
        nav="dashboard",
        window=window,
        windows=list(WINDOWS),
        since=since,
        busiest=busiest,
        slots=slots,
        **data,
    )
    return views.render(request, "dashboard.html", context)


def add_routes(router: APIRouter) -> None:
    """Add the page to the UI's router (``pages.router``: its /ui prefix, its sign-in check)."""
    router.add_api_route("/", dashboard_page, methods=["GET"], response_class=HTMLResponse)
