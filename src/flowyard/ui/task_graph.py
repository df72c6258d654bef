"""A flow run's task runs as a Gantt timeline and a dependency graph, laid out on the
server and drawn as SVG by ``_task_graph.html`` (no script, nothing to download).

Dependencies are what the SDK records in each task run's ``task_inputs`` (an upstream
task run per parameter, or ``wait_for``). Up to ``MAX_DETAIL`` task runs each get a bar
and a node; beyond that, task runs are grouped by task key (one bar spanning the group,
one node, counts by state): the counts and spans are one grouped query in the store, and
only the first ``MAX_READ`` task runs' inputs are read for the groups' edges, so a run of
10,000 task runs (or more) is still a page of a few hundred shapes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Text, cast, func, select
from sqlalchemy.orm import Session

from flowyard.store import models as m

MAX_READ = 10_000  # task runs whose inputs are read for the grouped graph's edges
MAX_DETAIL = 200  # beyond this, grouped by task key
MAX_GROUPS = 60  # groups drawn; the rest are one "other" group
WIDTH = 960  # the Gantt's time axis, in SVG units
LANE = 16  # a Gantt lane's height
LABEL = 180  # room for the Gantt's labels in grouped form
NODE_W, NODE_H, COL, ROW = 150, 26, 190, 34  # the graph's nodes and their spacing
_INPUT_ID = re.compile(r'"id":\s*"([^"]+)"')  # an upstream's id in task_inputs' JSON
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_WORST = ("FAILED", "CRASHED", "CANCELLED", "RUNNING", "PENDING", "PAUSED", "COMPLETED")


@dataclass(frozen=True)
class Item:
    """One task run, or one group of them: what both drawings need."""

    key: str
    label: str
    state: str  # a StateType value, for the colour
    start: datetime | None
    end: datetime | None
    upstream: frozenset[str]
    count: int = 1
    states: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Bar:
    label: str
    title: str
    state: str
    x: float
    width: float
    y: int
    count: int


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    title: str
    state: str
    x: int
    y: int
    count: int


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass
class TaskGraph:
    total: int = 0  # task runs read
    more: bool = False  # more than MAX_READ exist
    grouped: bool = False
    bars: list[Bar] = field(default_factory=list)
    gantt_height: int = 0
    gantt_left: int = 0  # where the time axis starts (labels on its left when grouped)
    span: str = ""
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    graph_width: int = 0
    graph_height: int = 0

    @property
    def gantt_width(self) -> int:
        return self.gantt_left + WIDTH


def read(session: Session, flow_run_id: str) -> TaskGraph:
    """The run's task runs laid out: each one up to ``MAX_DETAIL``, else grouped."""
    where = m.TaskRun.flow_run_id == flow_run_id
    total = session.scalar(select(func.count()).select_from(m.TaskRun).where(where)) or 0
    graph = TaskGraph(total=total)
    if total == 0:
        return graph
    if total > MAX_DETAIL:
        graph.grouped, graph.more = True, total > MAX_READ
        items = _groups(session, flow_run_id)
    else:
        columns = (
            m.TaskRun.id, m.TaskRun.name, m.TaskRun.state_type, m.TaskRun.start_time,
            m.TaskRun.end_time, m.TaskRun.created, m.TaskRun.task_inputs,
        )  # fmt: skip
        query = select(*columns).where(where).order_by(m.TaskRun.created, m.TaskRun.id)
        items = [
            Item(
                key=r.id,
                label=r.name,
                state=r.state_type.value,
                start=r.start_time or r.created,
                end=r.end_time,
                upstream=_upstream(r.task_inputs),
            )
            for r in session.execute(query.limit(MAX_DETAIL))
        ]
    _gantt(graph, items)
    _dag(graph, items)
    return graph


def _groups(session: Session, flow_run_id: str) -> list[Item]:
    """One item per task key (the largest ``MAX_GROUPS - 1``; the rest one "other" group),
    counted in the store whatever the number of task runs, spanning its runs, coloured by
    its worst state; which groups fed which is read from the first ``MAX_READ`` task runs."""
    where = m.TaskRun.flow_run_id == flow_run_id
    began = func.min(func.coalesce(m.TaskRun.start_time, m.TaskRun.created))
    stats = session.execute(
        select(
            m.TaskRun.task_key, m.TaskRun.state_type, func.count(), began,
            func.max(m.TaskRun.end_time), func.count(m.TaskRun.end_time),
        ).where(where).group_by(m.TaskRun.task_key, m.TaskRun.state_type)
    ).all()  # fmt: skip
    sizes: Counter[str] = Counter()
    for key, _, count, *_ in stats:
        sizes[key] += count
    kept = set(sizes)
    if len(sizes) > MAX_GROUPS:
        kept = {k for k, _ in sizes.most_common(MAX_GROUPS - 1)}

    def group_of(key: str) -> str:
        return key if key in kept else "(other tasks)"

    states: dict[str, Counter[str]] = {}
    spans: dict[str, list[Any]] = {}  # group -> [first start, last end, runs ended]
    for key, state, count, first, last, ended in stats:
        name = group_of(key)
        states.setdefault(name, Counter())[state.value] += count
        span = spans.setdefault(name, [first, last, 0])
        span[0] = min(span[0], first) if span[0] and first else span[0] or first
        span[1] = max(span[1], last) if span[1] and last else span[1] or last
        span[2] += ended
    links = session.execute(
        select(m.TaskRun.id, m.TaskRun.task_key, cast(m.TaskRun.task_inputs, Text))
        .where(where)
        .order_by(m.TaskRun.created, m.TaskRun.id)
        .limit(MAX_READ)
    ).all()
    key_of = {task_run_id: group_of(key) for task_run_id, key, _ in links}
    upstream: dict[str, set[str]] = {}
    for task_run_id, _, inputs in links:  # the inputs' JSON text, searched without parsing
        fed = {key_of[u] for u in _INPUT_ID.findall(inputs or "") if u in key_of}
        upstream.setdefault(key_of[task_run_id], set()).update(fed - {key_of[task_run_id]})
    items = []
    for name, counts in states.items():
        first, last, ended = spans[name]
        total = sum(counts.values())
        items.append(
            Item(
                key=name,
                label=name,
                state=next((s for s in _WORST if counts[s]), next(iter(counts))),
                start=_aware(first),
                end=_aware(last) if ended == total else None,
                upstream=frozenset(upstream.get(name, ())),
                count=total,
                states=tuple(sorted(counts.items())),
            )
        )
    return sorted(items, key=lambda i: (i.start is None, i.start or _EPOCH, i.key))


def _aware(value: Any) -> datetime | None:
    """An aggregate's time: SQLite's MIN/MAX come back as text, without a time zone."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, datetime)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _upstream(inputs: dict[str, Any] | None) -> frozenset[str]:
    found: set[str] = set()
    for listed in (inputs or {}).values():
        for entry in listed if isinstance(listed, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                found.add(entry["id"])
    return frozenset(found)


def _gantt(graph: TaskGraph, items: list[Item]) -> None:
    """Bars on a shared time axis: grouped, one lane per group; else lanes packed by start
    time (a task run takes the first lane free when it starts)."""
    starts = [i.start for i in items if i.start]
    if not starts:
        return
    t0 = min(starts)
    t1 = max([i.end for i in items if i.end] + starts)
    seconds = max((t1 - t0).total_seconds(), 0.001)
    graph.span = f"{seconds:.3f}s" if seconds < 60 else f"{seconds / 60:.1f} min"
    scale = WIDTH / seconds
    graph.gantt_left = LABEL if graph.grouped else 0
    lane_ends: list[datetime] = []
    for item in sorted(items, key=lambda i: (i.start or t0, i.key)):
        start = item.start or t0
        end = item.end or t1
        if graph.grouped:
            lane = len(lane_ends)
            lane_ends.append(end)
        else:
            lane = next((n for n, free in enumerate(lane_ends) if free <= start), len(lane_ends))
            if lane == len(lane_ends):
                lane_ends.append(end)
            lane_ends[lane] = max(end, start)
        x = graph.gantt_left + (start - t0).total_seconds() * scale
        width = max((end - start).total_seconds() * scale, 2.0)
        graph.bars.append(
            Bar(
                label=_short(item.label, 26),
                title=_title(item),
                state=item.state.lower(),
                x=round(x, 1),
                width=round(width, 1),
                y=lane * LANE,
                count=item.count,
            )
        )
    graph.gantt_height = len(lane_ends) * LANE + 4


def _dag(graph: TaskGraph, items: list[Item]) -> None:
    """Columns by depth (one more than the deepest upstream), rows in order within a
    column; an edge from each upstream's right side to its downstream's left side."""
    known = {i.key: i for i in items}
    depth: dict[str, int] = {}
    for item in items:
        stack = [(item.key, False)]
        visiting: set[str] = set()
        while stack:  # iterative depth-first search; a cycle (not expected) is cut
            key, done = stack.pop()
            if key in depth:
                continue
            ups = [u for u in known[key].upstream if u in known]
            if done:
                visiting.discard(key)
                depth[key] = 1 + max((depth.get(u, -1) for u in ups), default=-1)
                continue
            visiting.add(key)
            stack.append((key, True))
            stack.extend((u, False) for u in ups if u not in depth and u not in visiting)
    rows: Counter[int] = Counter()
    place: dict[str, tuple[int, int]] = {}
    for item in items:
        column = depth[item.key]
        place[item.key] = (column * COL + 4, rows[column] * ROW + 4)
        rows[column] += 1
        x, y = place[item.key]
        label = _short(item.label, 19) + (f" ×{item.count}" if item.count > 1 else "")
        state = item.state.lower()
        graph.nodes.append(Node(item.key, label, _title(item), state, x, y, item.count))
    for item in items:
        x2, y2 = place[item.key]
        for upstream in sorted(item.upstream):
            if upstream in place:
                x1, y1 = place[upstream]
                graph.edges.append(Edge(x1 + NODE_W, y1 + NODE_H // 2, x2, y2 + NODE_H // 2))
    graph.graph_width = (max(depth.values()) + 1) * COL
    graph.graph_height = max(rows.values()) * ROW + 8


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _title(item: Item) -> str:
    if item.count == 1:
        return f"{item.label}: {item.state.title()}"
    counts = ", ".join(f"{n} {state.title()}" for state, n in item.states)
    return f"{item.label}: {item.count} task runs ({counts})"
