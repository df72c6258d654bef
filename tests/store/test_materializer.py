"""The scheduler's passes in a process of their own: what it writes, queues and streams."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime

from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.services.materializer import Materializer, serve
from flowyard.orchestrator.services.scheduler import Encoded, Window
from flowyard.store import models as m

NOW = datetime(2026, 5, 1, 10, 0, 1, tzinfo=UTC)
WINDOW = Window(max_runs=3, horizon_seconds=3600)


def _schedule(database) -> None:
    with database.session() as session:
        pool = m.WorkPool(name="local", type="process")
        queue = m.WorkQueue(name="default", priority=1)
        pool.queues.append(queue)
        flow = m.Flow(name="etl")
        dep = m.Deployment(flow=flow, name="minutely", entrypoint="f.py:etl", queue=queue)
        session.add_all([pool, dep])
        session.add(m.DeploymentSchedule(deployment=dep, kind="interval", expression="60"))


def _request() -> str:
    fields = {"max_runs": 3, "horizon_seconds": 3600, "max_catch_up": 100, "max_per_pass": 5000}
    return json.dumps({"now": NOW.isoformat(), "window": fields})


def test_the_child_answers_each_batch_with_its_queue_entries_and_events(database):
    """Each committed batch comes back with the runs to queue and their Scheduled events
    (the API streams them: the child has no event stream), then the pass's count; a
    second pass over the same window writes nothing."""
    _schedule(database)
    out = io.StringIO()
    serve(iter([json.dumps({"database_url": database.url}), _request(), _request()]), out)

    first, done, again = [json.loads(line) for line in out.getvalue().splitlines()]
    queued = [QueueEffect(*fields) for fields in first["batch"]]
    assert [(e.pool, e.queue) for e in queued] == [("local", "default")] * 3
    assert [e.enqueue_at for e in queued] == [NOW.timestamp() + 59 + 60 * i for i in range(3)]
    named = {json.loads(doc)["resource"]["flowyard.resource.id"] for _, _, doc in first["events"]}
    assert {name for _, name, _ in first["events"]} == {"flowyard.flow-run.Scheduled"}
    assert named == {f"flowyard.flow-run.{e.run_id}" for e in queued}
    assert done == {"done": 3}
    assert again == {"done": 0}


def test_a_pass_runs_in_the_child_process_which_ends_when_stopped(database):
    """The real child: a pass writes and hands over the runs, the next finds them written,
    and stopping ends the process."""
    _schedule(database)
    batches: list[tuple[list[QueueEffect], list[Encoded]]] = []

    async def on_batch(effects: list[QueueEffect], encoded: list[Encoded]) -> None:
        batches.append((effects, encoded))

    async def two_passes() -> tuple[int, int, int | None]:
        materializer = Materializer(database.url)
        try:
            first = await materializer.run_pass(NOW, WINDOW, on_batch)
            second = await materializer.run_pass(NOW, WINDOW, on_batch)
            process = materializer._process
        finally:
            await materializer.stop()
        assert process is not None
        return first, second, process.returncode

    first, second, returncode = asyncio.run(two_passes())
    assert (first, second) == (3, 0)
    assert returncode is not None  # ended
    assert len(batches) == 1 and len(batches[0][0]) == 3 and len(batches[0][1]) == 3
