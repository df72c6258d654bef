"""What only ``ProcessPoolTaskRunner`` has, in real spawned subprocesses, each checked
against Prefect 3.9.1's ``ProcessPoolTaskRunner`` running the same program: calls pickled
by value, what cannot be pickled, a subprocess killed mid-task, ``max_workers`` and
``initializer``. What every engine shares is tested in ``test_remote_runners.py``."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures.process import BrokenProcessPool

import pytest
from tests.helpers.parked_tasks import parks
from tests.waiting import wait_until

from flowyard import flow, task
from flowyard.runtime import flow_run as current_flow_run
from flowyard.task_runners import ProcessPoolTaskRunner

MARK = "FLOWYARD_TEST_POOL_MARK"


@task
def double(n: int) -> int:
    return n * 2


@task
def gives_a_lock() -> object:
    return threading.Lock()


@task
def marked(n: int) -> tuple[int, str | None]:
    return os.getpid(), os.environ.get(MARK)


def _mark(value: str) -> None:
    os.environ[MARK] = value


def test_a_lambda_task_and_a_lambda_argument_travel_by_value():
    """As Prefect's (cloudpickle): a task made from a lambda runs in a subprocess, and a
    lambda passed as an argument reaches the task, which fails with its own TypeError."""
    plus_one = task(lambda x: x + 1, name="plus_one")

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def program() -> tuple[int, str, BaseException | None]:
        misused = double.submit(lambda: 1)  # type: ignore[arg-type]
        misused.wait()
        error = misused.state.result(raise_on_failure=False)
        return plus_one.submit(1).result(), misused.state.type.value, error

    value, state, error = program()
    assert (value, state) == (2, "FAILED")
    assert isinstance(error, TypeError)
    assert "unsupported operand type(s) for *: 'function' and 'int'" in str(error)


def test_what_cannot_be_pickled_crashes_its_task_run_with_the_pickling_error():
    """An argument or a result that cannot be pickled: result() raises Prefect's
    ``TypeError: cannot pickle '_thread.lock' object``; the run ends Crashed and the flow
    goes on."""

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def program() -> list[tuple[str, str]]:
        seen = []
        for future in (double.submit(threading.Lock()), gives_a_lock.submit()):  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="cannot pickle '_thread.lock' object"):
                future.result()
            seen.append((future.state.type.value, future.state.message or ""))
        return seen

    (arg_state, arg_message), (result_state, result_message) = program()
    assert (arg_state, result_state) == ("CRASHED", "CRASHED")
    assert "could not be sent to process pool: TypeError" in arg_message
    assert "TypeError: cannot pickle '_thread.lock' object" in result_message


def test_a_subprocess_killed_mid_task_crashes_its_run_and_a_new_pool_runs_the_next(api, tmp_path):
    """SIGKILL of the subprocess running a task run: result() raises Prefect's
    ``BrokenProcessPool`` and the API records the run Crashed. Unlike Prefect's (whose
    later submits all raise ``BrokenProcessPool``), the next task run goes to a new pool."""
    pid_file = tmp_path / "parked.pid"

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def program() -> tuple[str, int, str, int]:
        future = parks.submit(str(tmp_path))
        killed = int(wait_until(lambda: pid_file.exists() and pid_file.read_text(), timeout=60))
        os.kill(killed, signal.SIGKILL)
        with pytest.raises(BrokenProcessPool, match="terminated abruptly"):
            future.result(timeout=60)
        return current_flow_run.id, killed, future.state.type.value, double.submit(4).result()

    try:
        run_id, killed, state, after = program()
    finally:
        (tmp_path / "release").touch()
    assert (state, after) == ("CRASHED", 8)
    records = {r.name: r.state_type.value for r in api.list_task_runs(run_id)}
    assert records == {"parks-0": "CRASHED", "double-0": "COMPLETED"}


def test_max_workers_defaults_to_the_cpu_count_and_the_initializer_runs_in_each_subprocess():
    """As Prefect's: ``max_workers`` defaults to ``multiprocessing.cpu_count()``, must be
    at least 1, and ``initializer(*initargs)`` runs in every subprocess before its tasks;
    ``duplicate()`` keeps the options and compares equal."""
    assert ProcessPoolTaskRunner().max_workers == multiprocessing.cpu_count()
    with pytest.raises(ValueError, match="max_workers must be >= 1"):
        ProcessPoolTaskRunner(max_workers=-1)
    runner = ProcessPoolTaskRunner(max_workers=2, initializer=_mark, initargs=("set",))
    copy = runner.duplicate()
    assert copy == runner and (copy.initializer, copy.initargs) == (_mark, ("set",))

    @flow(task_runner=copy)
    def program() -> list[tuple[int, str | None]]:
        return marked.map(range(4)).result()

    seen = program()
    assert {mark for _, mark in seen} == {"set"}
    assert os.getpid() not in {pid for pid, _ in seen} and MARK not in os.environ
