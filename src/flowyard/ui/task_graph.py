"""A flow run's task runs as a Gantt timeline and a dependency graph, laid out on the
server and drawn as SVG by ``_task_graph.html`` (no script, nothing to download).

Dependencies are what the SDK records in each task run's ``task_inputs`` (an upstream
task run per parameter, or ``wait_for``). Up to ``MAX_DETAIL`` task runs each get a bar
and a node; beyond that, task runs are grouped by task key (one bar spanning the group,
one node, counts by state), so that a run of 10,000 task runs is still a page of a few
hundred shapes. At most ``MAX_READ`` task runs are read; the page says if there were more.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowyard.store import models as m

MAX_READ = 10_000  # task runs read for the drawing
MAX_DETAIL = 200  # beyond this, grouped by task key
MAX_GROUPS = 60  # groups drawn; the rest are one "other" group
WIDTH = 960  # the Gantt's time axis, in SVG units
LANE = 16  # a Gantt lane's height
LABEL = 180  # room for the Gantt's labels in grouped form
NODE_W, NODE_H, COL, ROW = 150, 26, 190, 34  # the graph's nodes and their spacing
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
    """The run's task runs (the first ``MAX_READ`` by creation), laid out."""
    columns = (
        m.TaskRun.id, m.TaskRun.name, m.TaskRun.task_key, m.TaskRun.state_type,
        m.TaskRun.start_time, m.TaskRun.end_time, m.TaskRun.created, m.TaskRun.task_inputs,
    )  # fmt: skip
    rows = session.execute(
        select(*columns)
        .where(m.TaskRun.flow_run_id == flow_run_id)
        .order_by(m.TaskRun.created, m.TaskRun.id)
        .limit(MAX_READ + 1)
    ).all()
    items = [
        Item(
            key=r.id,
            label=r.name,
            state=r.state_type.value,
            start=r.start_time or r.created,
            end=r.end_time,
            upstream=_upstream(r.task_inputs),
        )
        for r in rows[:MAX_READ]
    ]
    keys = {r.id: r.task_key for r in rows[:MAX_READ]}
    return layout(items, keys, more=len(rows) > MAX_READ)


def _upstream(inputs: dict[str, Any] | None) -> frozenset[str]:
    found: set[str] = set()
    for listed in (inputs or {}).values():
        for entry in listed if isinstance(listed, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                found.add(entry["id"])
    return frozenset(found)


def layout(items: list[Item], task_keys: dict[str, str], *, more: bool = False) -> TaskGraph:
    """Bars and nodes for ``items`` (task runs; ``task_keys`` maps each id to its task key,
    used to group them when there are more than ``MAX_DETAIL``)."""
    graph = TaskGraph(total=len(items), more=more)
    if not items:
        return graph
    if len(items) > MAX_DETAIL:
        graph.grouped = True
        items = group(items, task_keys)
    _gantt(graph, items)
    _dag(graph, items)
    return graph


def group(items: list[Item], task_keys: dict[str, str]) -> list[Item]:
    """One item per task key (the largest ``MAX_GROUPS - 1``; the rest one "other" group),
    spanning its runs, coloured by its worst state, with the groups that fed it upstream."""
    sizes = Counter(task_keys[i.key] for i in items)
    kept = set(sizes)
    if len(sizes) > MAX_GROUPS:
        kept = {k for k, _ in sizes.most_common(MAX_GROUPS - 1)}
    group_of = {
        i.key: task_keys[i.key] if task_keys[i.key] in kept else "(other tasks)" for i in items
    }
    members: dict[str, list[Item]] = {}
    for item in items:
        members.setdefault(group_of[item.key], []).append(item)
    grouped = []
    for name, runs in members.items():
        states = Counter(r.state for r in runs)
        starts = [r.start for r in runs if r.start]
        ends = [r.end for r in runs if r.end]
        upstream = {group_of[u] for r in runs for u in r.upstream if u in group_of} - {name}
        grouped.append(
            Item(
                key=name,
                label=name,
                state=next((s for s in _WORST if states[s]), runs[0].state),
                start=min(starts) if starts else None,
                end=max(ends) if ends and len(ends) == len(runs) else None,
                upstream=frozenset(upstream),
                count=len(runs),
                states=tuple(sorted(states.items())),
            )
        )
    return sorted(grouped, key=lambda i: (i.start is None, i.start or datetime.min, i.key))


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
