"""Background task runs: Task.delay / apply_async and real task-worker processes."""

from __future__ import annotations

import importlib
import json
import signal
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from flowyard import flow
from flowyard import schemas as s
from flowyard.cli.processes import ChildProcess, ServerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError, SerializationError
from flowyard.futures import PrefectDistributedFuture
from flowyard.results import UntrustedResult, load_result
from flowyard.runtime import flow_run
from flowyard.states import StateType
from tests.e2e.conftest import FAST
from tests.planted import evil_ref, plant
from tests.waiting import wait_until

TASKS = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from flowyard import task


    @task
    def add(a: int, b: int) -> int:
        return a + b


    @task
    def boom(x: int) -> int:
        raise ValueError(f"cannot take {x}")


    @task
    def chatty(word: str) -> str:
        from flowyard import get_run_logger

        get_run_logger().info("chatty says %s", word)
        return word


    @task
    def gated(folder: str, name: str) -> str:
        # records its start (and pid), waits for the test's go file, records its end
        here = Path(folder)
        with open(here / "starts", "a") as fh:
            fh.write(f"{name} {time.time()} {os.getpid()}\\n")
        while not (here / "go").exists() and not (here / f"go-{name}").exists():
            time.sleep(0.02)
        with open(here / "ends", "a") as fh:
            fh.write(f"{name} {time.time()}\\n")
        return name
    """
)


@pytest.fixture(scope="module")
def tasks_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The tasks above, imported here as the task workers import them (same task keys)."""
    folder = tmp_path_factory.mktemp("bg-tasks")
    name = f"bg_tasks_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(TASKS)
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


@pytest.fixture
def producer(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> ServerProcess:
    """This process talks to the session server, as a producer of background runs."""
    monkeypatch.setenv("FLOWYARD_API_URL", server.url)
    monkeypatch.setenv("FLOWYARD_HOME", str(server.home))
    return server


@pytest.fixture
def start_task_worker(
    producer: ServerProcess, tasks_module: ModuleType, tmp_path: Path
) -> Iterator[Callable[..., ChildProcess]]:
    """Start ``flowyard task serve FILE:add FILE:boom FILE:gated FILE:chatty …`` processes."""
    started: list[ChildProcess] = []
    source = tasks_module.__file__
    env = {**FAST, "FLOWYARD_API_URL": producer.url, "FLOWYARD_HOME": str(producer.home)}

    def start(*extra: str) -> ChildProcess:
        entrypoints = [f"{source}:{name}" for name in ("add", "boom", "gated", "chatty")]
        log = tmp_path / f"task-worker-{len(started)}.log"
        worker = ChildProcess(["task", "serve", *entrypoints, *extra], env, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop(timeout=30)


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def test_delay_returns_at_once_and_a_task_worker_runs_it(start_task_worker, tasks_module, api):
    """delay() schedules a run on the server; a task-worker process runs it; result() gives 3."""
    future = tasks_module.add.delay(1, 2)
    assert isinstance(future, PrefectDistributedFuture)
    assert api.read_task_run(future.task_run_id).state_type is StateType.SCHEDULED
    start_task_worker()
    assert future.result(timeout=60) == 3
    run = api.read_task_run(future.task_run_id)
    assert run.flow_run_id is None
    assert run.state_type is StateType.COMPLETED
    assert run.result is not None
    assert future.state.is_completed()


def test_a_flow_runs_background_runs_log_to_that_flow_run(start_task_worker, tasks_module, api):
    """A run made by delay() inside a recorded flow run names that run, and the task
    worker ships the run's logs to it (with the run's task run id); a run made outside
    any flow run names none, and its logs stay with the task worker."""
    start_task_worker()

    @flow
    def caller() -> tuple[str, str, str]:
        future = tasks_module.chatty.delay("hello")
        return flow_run.id, future.task_run_id, future.result(timeout=60)

    run_id, task_run_id, said = caller()
    assert said == "hello"
    assert api.read_task_run(task_run_id).caller_flow_run_id == run_id

    def shipped() -> list[s.Log]:
        return [e for e in api.read_logs(run_id) if "chatty says hello" in e.message]

    [entry] = wait_until(shipped, timeout=30)
    assert entry.task_run_id == task_run_id

    lone = tasks_module.chatty.delay("alone")
    assert lone.result(timeout=60) == "alone"
    assert api.read_task_run(lone.task_run_id).caller_flow_run_id is None


def test_a_failing_task_raises_its_exception_from_result(start_task_worker, tasks_module):
    """A background run that fails makes future.result() raise the task's own exception."""
    start_task_worker()
    future = tasks_module.boom.delay(7)
    with pytest.raises(ValueError, match="cannot take 7"):
        future.result(timeout=60)
    assert future.state.is_failed()
    assert isinstance(future.result(raise_on_failure=False), ValueError)


def test_wait_for_holds_a_run_until_its_upstream_completes(
    start_task_worker, tasks_module, tmp_path
):
    """apply_async(wait_for=[f]) runs only after f's run completed, even with free slots."""
    start_task_worker("--limit", "3")
    first = tasks_module.gated.delay(str(tmp_path), "first")
    second = tasks_module.gated.apply_async(
        args=(str(tmp_path),), kwargs={"name": "second"}, wait_for=[first]
    )
    wait_until(lambda: _lines(tmp_path / "starts"), timeout=60)
    (tmp_path / "go-second").touch()  # the second may finish at once, once it starts
    assert [row[0] for row in _lines(tmp_path / "starts")] == ["first"]
    (tmp_path / "go-first").touch()
    assert second.result(timeout=60) == "second"
    assert [row[0] for row in _lines(tmp_path / "ends")] == ["first", "second"]


def test_limit_bounds_the_runs_of_one_task_worker(start_task_worker, tasks_module, tmp_path):
    """With --limit 2, at most two runs overlap in time, and two do."""
    futures = [tasks_module.gated.delay(str(tmp_path), f"r{i}") for i in range(4)]
    start_task_worker("--limit", "2")
    wait_until(lambda: len(_lines(tmp_path / "starts")) == 2, timeout=60)
    (tmp_path / "go").touch()
    assert sorted(f.result(timeout=60) for f in futures) == ["r0", "r1", "r2", "r3"]
    starts = {row[0]: float(row[1]) for row in _lines(tmp_path / "starts")}
    ends = {row[0]: float(row[1]) for row in _lines(tmp_path / "ends")}
    overlap = max(sum(starts[o] <= starts[n] < ends[o] for o in starts) for n in starts)
    assert overlap == 2


def test_a_killed_task_worker_s_run_is_claimed_again_and_completes_once(
    start_task_worker, tasks_module, tmp_path, api
):
    """SIGKILL mid-run: the lease expires, another worker runs it, it completes once."""
    first = start_task_worker()
    future = tasks_module.gated.delay(str(tmp_path), "only")
    wait_until(lambda: _lines(tmp_path / "starts"), timeout=60)
    assert api.read_task_run(future.task_run_id).state_type is StateType.RUNNING
    first.stop(sig=signal.SIGKILL)
    (tmp_path / "go").touch()  # the killed run never finishes; the next one does at once
    start_task_worker()
    assert future.result(timeout=60) == "only"
    assert [row[0] for row in _lines(tmp_path / "ends")] == ["only"]
    assert len(_lines(tmp_path / "starts")) == 2
    assert api.read_task_run(future.task_run_id).state_type is StateType.COMPLETED


def test_a_claim_taken_back_cannot_report(producer, tasks_module, api):
    """A worker whose lease expired (another claimed the run) gets 409 on its reports."""
    future = tasks_module.add.delay(2, 2)
    key = tasks_module.add.task_key

    def claim(worker: str) -> list[s.ClaimedTaskRun]:
        body = s.TaskWorkerClaim(task_keys=[key], worker_name=worker, max_runs=1, wait=1)
        return [c for c in api.claim_background_task_runs(body) if c.run.id == future.task_run_id]

    stale = wait_until(lambda: claim("silent"), timeout=30)[0]
    fresh = wait_until(lambda: claim("second"), timeout=30, interval=0.2)[0]  # after the lease
    assert fresh.token != stale.token
    for token, expected in ((stale.token, 409), (fresh.token, None)):
        body = s.BackgroundStateReport(token=token, state=StateType.RUNNING)
        try:
            api.report_background_task_run(future.task_run_id, body)
            status = None
        except ApiError as exc:
            status = exc.status_code
        assert status == expected
    done = s.BackgroundStateReport(token=fresh.token, state=StateType.COMPLETED)
    api.report_background_task_run(future.task_run_id, done)
    with pytest.raises(ApiError) as refused:
        api.report_background_task_run(future.task_run_id, done)  # never completed twice
    assert refused.value.status_code == 409


def test_unpicklable_parameters_are_refused_before_anything_is_created(producer, tasks_module):
    """An argument pickle cannot write is refused at delay(), naming the task and parameter."""
    storage = Path(producer.home) / "storage"
    before = sorted(storage.glob("parameters-*")) if storage.exists() else []
    with pytest.raises(SerializationError, match=r"parameter 'a' of task 'add'"):
        tasks_module.add.delay(threading.Lock(), 1)
    after = sorted(storage.glob("parameters-*")) if storage.exists() else []
    assert after == before


def test_delay_and_serve_need_an_api(tasks_module, monkeypatch):
    """Without FLOWYARD_API_URL, delay() and serve() raise a clear RuntimeError."""
    monkeypatch.delenv("FLOWYARD_API_URL", raising=False)
    with pytest.raises(RuntimeError, match="need a Flowyard API"):
        tasks_module.add.delay(1, 2)
    with pytest.raises(RuntimeError, match="need a Flowyard API"):
        tasks_module.add.serve(timeout=0)


def test_a_scheduled_background_run_is_readable_by_id(producer: ServerProcess):
    """A run nobody serves stays Scheduled: wait answers with it at its timeout, and GET by id."""
    with FlowyardClient(producer.url) as client:
        body = s.BackgroundTaskRunCreate(task_key="nobody.serves", name="lonely")
        run = client.create_background_task_run(body)
        assert client.wait_background_task_run(run.id, timeout=0.1).state_type is (
            StateType.SCHEDULED
        )
        assert client.read_task_run(run.id).name == "lonely"


# -- untrusted references: nothing is unpickled from where a caller pointed -------------------


def _background_run(api: FlowyardClient, task: object, ref: dict[str, object]) -> s.TaskRun:
    """A run of ``task`` created straight through the API, its parameters at ``ref``."""
    body = s.BackgroundTaskRunCreate.model_validate(
        {"task_key": task.task_key, "name": "planted", "parameters_ref": ref}  # type: ignore[attr-defined]
    )
    return api.create_background_task_run(body)


def test_a_task_worker_never_unpickles_parameters_from_where_the_run_points(
    start_task_worker, tasks_module, producer, api, tmp_path
):
    """A run whose parameters reference names a folder of the caller's choosing, or a
    planted unsigned record in the task's own storage: the task worker fails the run
    without unpickling anything (no code of the caller's runs)."""
    outside = _background_run(api, tasks_module.add, evil_ref(tmp_path / "evil", "parameters-x"))
    plant(tmp_path / "evil", "parameters-x", tmp_path / "ran-outside")
    plant(Path(producer.home) / "storage", "parameters-planted", tmp_path / "ran-inside")
    planted = evil_ref(Path(producer.home) / "storage", "parameters-planted")
    inside = _background_run(api, tasks_module.add, planted)
    start_task_worker()
    for run, reason in ((outside, "no result at"), (inside, "it is not signed")):
        future = PrefectDistributedFuture(run.id)
        future.wait(timeout=60)
        assert future.state.is_failed()
        assert reason in (future.state.message or "")
    assert not (tmp_path / "ran-outside").exists()
    assert not (tmp_path / "ran-inside").exists()


def test_result_references_written_through_the_api_are_never_unpickled(
    producer, tasks_module, api, tmp_path
):
    """A claimant reports a run completed with a result reference of its choosing, and a
    flow run's result is set through the API: future.result() and load_result refuse
    both, and nothing is unpickled."""
    future = tasks_module.add.delay(1, 2)
    body = s.TaskWorkerClaim(task_keys=[tasks_module.add.task_key], worker_name="intruder", wait=5)
    claimed = wait_until(
        lambda: [c for c in api.claim_background_task_runs(body) if c.run.id == future.task_run_id],
        timeout=30,
    )[0]
    storage = Path(producer.home) / "storage"
    plant(storage, "result-planted", tmp_path / "ran")
    ref = s.ResultRef.model_validate(evil_ref(storage, "result-planted"))
    report = s.BackgroundStateReport(token=claimed.token, state=StateType.COMPLETED, result=ref)
    api.report_background_task_run(future.task_run_id, report)
    with pytest.raises(UntrustedResult, match="not signed"):
        future.result(timeout=30)
    flow_run = api.create_flow_run(s.FlowRunCreate(flow_name="planted-result"))
    plant(tmp_path / "evil", "r", tmp_path / "ran")
    api.set_flow_run_result(
        flow_run.id, s.ResultRef.model_validate(evil_ref(tmp_path / "evil", "r"))
    )
    with pytest.raises(UntrustedResult, match="neither this process's default storage"):
        load_result(api.read_flow_run(flow_run.id))
    assert not (tmp_path / "ran").exists()


def test_pickled_parameters_and_results_travel_signed(start_task_worker, tasks_module, producer):
    """Arguments JSON cannot hold (tuples) are pickled and signed by the producer, read by
    the task worker, and its pickled result read back: the shared key signs both ways."""
    storage = Path(producer.home) / "storage"
    before = set(storage.glob("parameters-*"))
    future = tasks_module.add.delay((1,), (2,))
    [record] = set(storage.glob("parameters-*")) - before
    metadata = json.loads(record.read_bytes())["metadata"]
    assert metadata["serializer"]["type"] == "pickle"
    assert metadata["signature"].startswith("hmac-sha256:")
    start_task_worker()
    assert future.result(timeout=60) == (1, 2)


def test_a_tag_the_api_refuses_is_recorded_storable_and_the_run_still_runs(
    start_task_worker, tasks_module, api
):
    """delay() of a task tagged ``"nightly "`` (a trailing space the API refuses): the run
    is recorded with the tag trimmed, under the task's own key, and a task worker runs it."""
    tagged = tasks_module.add.with_options(tags=["nightly ", "etl"])
    future = tagged.delay(2, 3)
    run = api.read_task_run(future.task_run_id)
    assert run.tags == ["etl", "nightly"] and run.task_key == tasks_module.add.task_key
    start_task_worker()
    assert future.result(timeout=60) == 5
