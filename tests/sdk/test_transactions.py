"""Transactions: task runs' on_commit / on_rollback hooks, commit modes, shared values and
keyed records. The orderings asserted were checked against Prefect 3.9.1."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from flowyard import flow, task
from flowyard.cache_policies import INPUTS
from flowyard.transactions import CommitMode, atransaction, get_transaction, transaction


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWYARD_API_URL", raising=False)
    return tmp_path / "home"


def recording_task(log: list[tuple[str, object]]):
    """A task that writes ``x`` (recorded) with hooks that record the commit or the undo."""

    @task
    def write(x: int) -> int:
        get_transaction().set("x", x)
        log.append(("write", x))
        return x

    @write.on_rollback
    def undo(txn) -> None:
        log.append(("undo", txn.get("x")))

    @write.on_commit
    def done(txn) -> None:
        log.append(("commit", txn.get("x")))

    return write


def test_a_failing_block_undoes_its_tasks_last_first_and_commits_wait_for_the_block():
    log: list[tuple[str, object]] = []
    write = recording_task(log)

    @task
    def check() -> None:
        raise ValueError("the written data is bad")

    @flow
    def pipeline() -> None:
        with pytest.raises(ValueError, match="bad"):
            with transaction():
                write(1)
                write(2)
                check()
        with transaction():
            write(3)
            log.append(("block ends", None))
        write(4)  # no transaction around it: commits as it ends

    pipeline()
    assert log == [
        ("write", 1), ("write", 2), ("undo", 2), ("undo", 1),
        ("write", 3), ("block ends", None), ("commit", 3),
        ("write", 4), ("commit", 4),
    ]  # fmt: skip


def test_a_nested_block_commits_with_the_outermost_and_is_undone_with_it():
    log: list[tuple[str, object]] = []
    write = recording_task(log)

    @flow
    def pipeline() -> None:
        with pytest.raises(RuntimeError):
            with transaction() as outer:
                outer.set("run", "nightly")
                with transaction() as inner:
                    assert inner.get("run") == "nightly"  # a child sees its parent's values
                    write(1)
                assert not inner.is_committed()  # LAZY: the outer one decides
                raise RuntimeError("the outer block fails after the inner one ended")
        assert inner.is_rolled_back() and outer.is_rolled_back()

    pipeline()
    assert log == [("write", 1), ("undo", 1)]


def test_commit_modes_eager_and_off():
    log: list[tuple[str, object]] = []
    write = recording_task(log)

    @flow
    def pipeline() -> None:
        with transaction():
            with transaction(commit_mode=CommitMode.EAGER):
                write(1)
            log.append(("inner ended", None))
        with transaction(commit_mode=CommitMode.OFF) as off:
            write(2)
        assert off.is_rolled_back()

    pipeline()
    assert log == [("write", 1), ("commit", 1), ("inner ended", None), ("write", 2), ("undo", 2)]


def test_submitted_tasks_are_undone_too():
    """Tasks submitted to threads stage their hooks in the transaction around the submit."""
    log: list[tuple[str, object]] = []
    write = recording_task(log)

    @flow
    def pipeline() -> None:
        with pytest.raises(ValueError):
            with transaction():
                futures = write.map([1, 2, 3])
                for future in futures:
                    future.result()
                raise ValueError("the batch is bad")

    pipeline()
    assert sorted(entry for entry in log if entry[0] == "undo") == [
        ("undo", 1), ("undo", 2), ("undo", 3)
    ]  # fmt: skip


def test_a_failing_commit_hook_rolls_its_task_back():
    """The task's own transaction is rolled back (its rollback hook runs); the block
    around it still commits (as in Prefect)."""
    log: list[str] = []

    def disk_full(txn) -> None:
        raise OSError("disk full")

    @task(on_commit=[disk_full])
    def publish() -> None:
        log.append("published")

    @publish.on_rollback
    def unpublish(txn) -> None:
        log.append("unpublished")

    @flow
    def pipeline() -> list[str]:
        with transaction() as txn:
            publish()
        return [child.state.value for child in [txn, *txn.children]]

    assert pipeline() == ["COMMITTED", "ROLLED_BACK"]
    assert log == ["published", "unpublished"]


def test_a_cached_task_run_stages_no_hooks():
    log: list[tuple[str, object]] = []
    write = recording_task(log).with_options(cache_policy=INPUTS)

    @flow
    def pipeline() -> None:
        write(7)
        write(7)  # a cache hit: its function and hooks do not run

    pipeline()
    assert log == [("write", 7), ("commit", 7)]


def test_values_unknown_keys_and_no_transaction_outside_one():
    assert get_transaction() is None
    with transaction() as txn:
        assert get_transaction() is txn
        assert txn.get("missing", "fallback") == "fallback"
        with pytest.raises(ValueError, match="unknown key: missing"):
            txn.get("missing")
    assert get_transaction() is None and txn.is_committed()


KEYED = textwrap.dedent(
    """
    from flowyard.transactions import transaction

    with transaction(key="load-2026-11-27") as txn:
        if txn.is_committed():
            print("skipped", txn.read())
        else:
            txn.stage({"rows": 42})
            print("loaded")
    """
)


def test_a_keyed_transaction_commits_once_across_processes(home):
    """A committed key leaves a record: the next process starts committed and reads it."""
    # PYTHONPATH passed on: a worktree's sources come first, as in every other subprocess
    env = {"FLOWYARD_HOME": str(home), "PATH": "/usr/bin:/bin"}
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    outputs = [
        subprocess.run(
            [sys.executable, "-c", KEYED], capture_output=True, text=True, env=env, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert outputs == ["loaded", "skipped {'rows': 42}"]


def test_a_task_failure_caught_in_the_block_still_rolls_it_back():
    """Prefect's task engine rolls a failed task's transaction back and its parents with
    it (``transactions.py`` ``reset``): under Prefect 3.9.1 the block is ROLLED_BACK at
    once, whether the caller catches the error or asks for the state."""
    log: list[tuple[str, object]] = []
    write = recording_task(log)

    @task
    def check() -> None:
        raise ValueError("bad")

    @flow
    def pipeline() -> tuple[str, str, str]:
        with transaction() as caught:
            write(1)
            with pytest.raises(ValueError):
                check()
            inside = caught.state.value
        with transaction() as stated:
            write(2)
            assert check(return_state=True).is_failed()
        return inside, caught.state.value, stated.state.value

    assert pipeline() == ("ROLLED_BACK", "ROLLED_BACK", "ROLLED_BACK")
    assert log == [("write", 1), ("undo", 1), ("write", 2), ("undo", 2)]


def test_results_in_a_transaction_are_written_when_it_commits():
    """As Prefect's (the task's transaction stages its result record; the write waits for
    the commit): a second call inside the block runs again, a call after it is cached,
    and a block that rolls back writes nothing."""
    runs: list[int] = []

    @task(cache_policy=INPUTS, persist_result=True)
    def add(x: int) -> int:
        runs.append(x)
        return x + 1

    @flow
    def pipeline() -> list[int]:
        with transaction():
            add(1)
            add(1)  # not written yet: runs again
        add(1)  # written at the commit: cached
        with pytest.raises(RuntimeError):
            with transaction():
                add(2)
                raise RuntimeError("roll back")
        add(2)  # nothing was written: runs
        return runs

    assert pipeline() == [1, 1, 2, 2]


def test_async_hooks_are_awaited_in_sync_blocks_and_task_runs():
    """Coroutine hooks (a task's and staged by hand) run to their end, as in Prefect 3.9.1
    (which awaited all four here, in this order)."""
    log: list[str] = []

    async def staged_commit(txn) -> None:
        await _suspended()
        log.append("staged commit")

    async def staged_undo(txn) -> None:
        await _suspended()
        log.append(f"staged undo {txn.get('x')}")

    @task
    def good() -> int:
        return 1

    @good.on_commit
    async def good_done(txn) -> None:
        await _suspended()
        log.append("task commit")

    @good.on_rollback
    async def good_undo(txn) -> None:
        await _suspended()
        log.append("task undo")

    @task
    def boom() -> None:
        raise ValueError("boom")

    @flow
    def pipeline() -> None:
        with transaction():
            good()
        with pytest.raises(ValueError), transaction():
            good()
            boom()

    with transaction() as txn:
        txn.stage(None, on_commit_hooks=[staged_commit])
    with pytest.raises(KeyError), transaction() as txn:
        txn.set("x", 7)
        txn.stage(None, on_rollback_hooks=[staged_undo])
        raise KeyError("x")
    pipeline()
    assert log == ["staged commit", "staged undo 7", "task commit", "task undo"]


def test_an_async_blocks_async_hooks_run_on_its_loop_and_sync_ones_off_it():
    """As Prefect 3.9.1's atransaction: an async hook awaits the block's own futures; a
    sync hook runs in another thread, so the loop is not blocked."""
    seen: dict[str, object] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.call_soon(ready.set_result, "ready")

        async def on_loop(txn) -> None:
            seen["same loop"] = asyncio.get_running_loop() is loop
            seen["future"] = await ready
            seen["value"] = txn.get("x")

        def off_loop(txn) -> None:
            seen["other thread"] = threading.get_ident() != loop_thread

        async def undo(txn) -> None:
            seen["undone on loop"] = asyncio.get_running_loop() is loop

        loop_thread = threading.get_ident()
        async with atransaction() as txn:
            txn.set("x", 5)
            txn.stage(None, on_commit_hooks=[on_loop, off_loop])
        with pytest.raises(KeyError):
            async with atransaction() as txn:
                txn.stage(None, on_rollback_hooks=[undo])
                raise KeyError("x")
        assert get_transaction() is None

    asyncio.run(main())
    assert seen == {
        "same loop": True,
        "future": "ready",
        "value": 5,
        "other thread": True,
        "undone on loop": True,
    }


async def _suspended() -> None:
    """Give the event loop a turn: a hook that is not awaited never gets past this."""
    ready = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(ready.set_result, None)
    await ready
