"""The flow-runs list at scale: its API query and its page, first and deep, how soon a
state change reaches an open page, and the page's first paint in Chromium.

Against a real server (SQLite by default; ``--database-url`` for PostgreSQL): ``--runs``
finished runs are written straight into the store in batches (through the API it would
take hours; these are history, not live runs), spread over 30 days and five states, each
tagged ``bench`` and one in 10,000 also ``rare``. Then:

- ``GET /api/flow_runs?limit=50`` and ``/ui/runs``: the first page, a page half-way down
  (by a cursor at the middle run) and filtered pages (``state=FAILED``, a name found in one
  run or in 11,111, a tag on every run, on ten or on none); median, p99 and max in ms over
  ``--repeat`` requests (``--queries`` names a few of them, and then skips the rest);
- live: with ``/ui/stream?view=runs`` open, a run is created and cancelled through the API;
  the time from the API's answer until the stream delivers the row (``--live`` times);
- first paint: ``/ui/runs`` in headless Chromium, ``first-contentful-paint`` in ms.

    python bench/ui_list.py [--runs 100000] [--repeat 20] [--database-url postgresql://…]
        [--queries name_rare,name_common,tag_missing]
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from browser import page_timings
from common import embedded_server, make_deployment, summary, write_results
from sqlalchemy import ColumnElement, create_engine, insert, select, text

from flowyard import schemas as s
from flowyard.orchestrator import run_pages
from flowyard.states import StateType
from flowyard.store import models as m

STATES = [StateType.COMPLETED] * 7 + [StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
BATCH = 10_000
RARE = 10_000
"""One run in ``RARE`` is tagged ``rare`` as well as ``bench``."""


def seed(url: str, deployment: s.Deployment, count: int) -> None:
    """``count`` finished runs of ``deployment``, created over the last 30 days."""
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as db:
        flow_id = db.scalar(select(m.Deployment.flow_id).where(m.Deployment.id == deployment.id))
        queue_id = db.scalar(select(m.Deployment.queue_id).where(m.Deployment.id == deployment.id))
    step = timedelta(days=30) / count
    if engine.dialect.name == "postgresql":
        ids = {"flow": flow_id, "deployment": deployment.id, "queue": queue_id}
        _seed_in_server(engine, ids, now - timedelta(days=30), step, count)
        engine.dispose()
        return
    for at in range(0, count, BATCH):
        rows = []
        for n in range(at, min(count, at + BATCH)):
            created = now - timedelta(days=30) + step * n
            state = STATES[n % len(STATES)]
            rows.append(
                {
                    "id": str(uuid.uuid4()), "name": f"history-{n}", "flow_id": flow_id,
                    "deployment_id": deployment.id, "queue_id": queue_id, "parameters": {},
                    "job_variables": {}, "state_type": state, "state_name": state.value.title(),
                    "state_timestamp": created + timedelta(seconds=5), "scheduled_time": created,
                    "start_time": created + timedelta(seconds=1),
                    "end_time": created + timedelta(seconds=5), "created": created,
                    "tags": ["bench", "rare"] if n % RARE == 0 else ["bench"],
                }
            )  # fmt: skip
        with engine.begin() as db:
            db.execute(insert(m.FlowRun), rows)
    engine.dispose()


SEED_SQL = """
INSERT INTO flow_runs (id, name, flow_id, deployment_id, queue_id, parameters, job_variables,
    state_type, state_name, state_timestamp, scheduled_time, start_time, end_time, priority,
    created, tags)
SELECT md5(random()::text || n)::uuid::text, 'history-' || n, :flow, :deployment, :queue,
    '{}', '{}', (:types)[n % :kinds + 1], (:names)[n % :kinds + 1], at + interval '5 seconds',
    at, at + interval '1 second', at + interval '5 seconds', 0, at,
    CAST(CASE WHEN n % :rare = 0 THEN '["bench", "rare"]' ELSE '["bench"]' END AS json)
FROM generate_series(CAST(:low AS bigint), CAST(:high AS bigint)) AS n,
    LATERAL (SELECT CAST(:start AS timestamptz) + n * CAST(:step AS interval) AS at) AS t
"""


def _seed_in_server(engine, ids: dict[str, str | None], start, step, count: int) -> None:
    """The same rows made by PostgreSQL itself (``generate_series``): a million in about a
    minute, where sending them took 8-13 minutes."""
    types = [state.value for state in STATES]
    names = [state.value.title() for state in STATES]
    chunk = 100_000
    for low in range(0, count, chunk):
        high = min(count, low + chunk) - 1
        values = dict(ids, types=types, names=names, kinds=len(STATES), low=low, high=high)
        values["rare"] = RARE
        with engine.begin() as db:
            db.execute(text(SEED_SQL), dict(values, start=start, step=step))
        print(f"seeded {high + 1:,} runs", flush=True)
    with engine.begin() as db:
        db.execute(text("ANALYZE flow_runs"))


def middle_cursor(url: str, count: int, *where: ColumnElement[bool]) -> str:
    """The cursor of the run half-way down the newest-first list of ``count`` runs (of
    those ``where`` matches): a page deep in the list, as a user paging down reaches it."""
    engine = create_engine(url)
    with engine.connect() as db:
        row = db.execute(
            select(m.FlowRun.created, m.FlowRun.id)
            .where(*where)
            .order_by(m.FlowRun.created.desc(), m.FlowRun.id.desc())
            .offset(count // 2)
            .limit(1)
        ).one()
    engine.dispose()
    return run_pages.encode_cursor(m.FlowRun(created=row.created, id=row.id))


def requests(url: str, runs: int, only: set[str]) -> list[tuple[str, str]]:
    """What is timed: the list first, deep (by cursor) and filtered, in the API and the page
    (of those named in ``only``, when it names any)."""
    deep = middle_cursor(url, runs)
    failed_deep = middle_cursor(url, runs // len(STATES), m.FlowRun.state_type == StateType.FAILED)
    common = "history-1"  # 1, 10-19, 100-199 …: 11,111 runs of 100,000
    common_runs = sum(1 for n in range(runs) if str(n).startswith("1"))
    common_deep = middle_cursor(url, common_runs, m.FlowRun.name.like(f"%{common}%"))
    day = (datetime.now(UTC) - timedelta(days=15)).replace(microsecond=0, tzinfo=None)
    window = f"since={day.isoformat()}&until={(day + timedelta(days=1)).isoformat()}"
    queries = (
        ("first", ""),
        ("deep", f"cursor={deep}"),
        ("failed_first", "state=FAILED"),
        ("failed_deep", f"state=FAILED&cursor={failed_deep}"),
        ("one_day", window),
        ("pool", "pool=bench-ui"),
        ("oldest_first", "order=oldest"),
        ("name_rare", "name=history-12345"),
        ("name_common", f"name={common}"),
        ("name_common_deep", f"name={common}&cursor={common_deep}"),
        ("tag_every_run", "tag=bench"),
        ("tag_rare", "tag=rare"),
        ("tag_missing", "tag=missing"),
    )
    out = []
    for name, query in queries:
        if only and name not in only:
            continue
        out.append((f"api_{name}", f"/api/flow_runs?limit=50&{query}"))
        out.append((f"page_{name}", f"/ui/runs?{query}"))
    return out


def timed(client: httpx.Client, path: str, repeat: int) -> dict[str, float]:
    client.get(path).raise_for_status()  # warm
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return summary(times)


class StreamLines:
    """The data lines an open ``/ui/stream`` sent, with when each came."""

    def __init__(self, url: str) -> None:
        self.lines: list[tuple[float, str]] = []
        self.answer: httpx.Response | None = None
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self.thread.start()

    def _read(self, url: str) -> None:
        with httpx.Client(timeout=60) as client, client.stream("GET", url) as answer:
            self.answer = answer
            try:
                for line in answer.iter_lines():
                    with self.changed:
                        self.lines.append((time.perf_counter(), line))
                        self.changed.notify_all()
            except (httpx.HTTPError, RuntimeError, ValueError):
                pass  # closed by close(): the server allows a few streams per client

    def close(self) -> None:
        if self.answer is not None:
            self.answer.close()
        self.thread.join(10)

    def when(self, text: str, timeout: float = 30) -> float | None:
        deadline = time.perf_counter() + timeout
        with self.changed:
            while time.perf_counter() < deadline:
                for at, line in self.lines:
                    if text in line:
                        return at
                self.changed.wait(deadline - time.perf_counter())
        return None


def live_latency(url: str, api, deployment: s.Deployment, times: int) -> dict[str, float]:
    """From the API's answer to a run's creation until the open stream sends its row."""
    found: list[float] = []
    for _ in range(times):
        page = httpx.get(f"{url}/ui/runs?limit=1", timeout=30).text
        after = page.split('data-after="', 1)[1].split('"', 1)[0]
        stream = StreamLines(f"{url}/ui/stream?view=runs&last_event_id={after}")
        run = api.run_deployment(deployment.id, s.DeploymentRunRequest())
        answered = time.perf_counter()
        arrived = stream.when(run.id)
        stream.close()
        if arrived is not None:
            found.append(max(0.0, arrived - answered) * 1000)
        api.cancel_flow_run(run.id)
    return summary(found)


def first_paint(url: str, repeat: int) -> object:
    timings = page_timings(f"{url}/ui/runs", repeat)
    return timings if isinstance(timings, str) else timings["first_paint"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--live", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--queries", default="", help="comma-separated names; skips the rest")
    args = parser.parse_args()
    only = {name for name in args.queries.split(",") if name}
    env = {"FLOWYARD_DATABASE_URL": args.database_url} if args.database_url else None
    with embedded_server(env) as (server, flows), server.client() as api:
        deployment = make_deployment(api, "bench-ui", flows)
        url = args.database_url or f"sqlite:///{server.home / 'flowyard.db'}"
        started = time.perf_counter()
        seed(url, deployment, args.runs)
        figures: dict[str, object] = {
            "runs": args.runs,
            "store": url.split(":", 1)[0].split("+")[0],  # postgresql+psycopg2: postgresql
            "seed_seconds": round(time.perf_counter() - started, 1),
        }
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for name, path in requests(url, args.runs, only):
                figures[name] = timed(client, path, args.repeat)
                print(name, figures[name], flush=True)
        if only:
            write_results(f"ui_list_{figures['store']}_queries", figures)
            return
        figures["live_ms"] = live_latency(server.url, api, deployment, args.live)
        figures["first_paint_ms"] = first_paint(server.url, min(args.repeat, 10))
        write_results(f"ui_list_{figures['store']}", figures)


if __name__ == "__main__":
    main()
