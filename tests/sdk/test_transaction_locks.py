"""Isolation levels and locks: ``SERIALIZABLE`` transactions with a memory lock manager
(real threads) and a file-system lock manager (real processes). The behaviours are those
of Prefect 3.9.1's tests/test_transactions.py (``TestIsolationLevel``, the competing
transactions of ``TestWithResultStore``) and of its lock managers, run there first."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.waiting import wait_until

from flowyard import task
from flowyard.cache_policies import INPUTS, Inputs, TaskSource
from flowyard.exceptions import ConfigurationError
from flowyard.locking import FileSystemLockManager, LockManager, MemoryLockManager
from flowyard.results import LocalFileSystem, ResultStore
from flowyard.transactions import IsolationLevel, atransaction, get_transaction, transaction

SERIALIZABLE = IsolationLevel.SERIALIZABLE
BLOCKED_FOR = 1.0  # how long a waiter is seen waiting before its way is cleared


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWYARD_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWYARD_API_URL", raising=False)


@pytest.fixture
def store(tmp_path) -> ResultStore:
    records = LocalFileSystem(tmp_path / "records")  # Prefect's keyword for the storage
    return ResultStore(result_storage=records, lock_manager=MemoryLockManager())


def key() -> str:
    return f"key-{uuid.uuid4().hex}"  # the memory lock manager is one per process


class TestIsolationLevel:
    def test_the_default_is_read_committed(self):
        """Prefect's test_default_isolation_level."""
        with transaction(key="test") as txn:
            assert txn.isolation_level == IsolationLevel.READ_COMMITTED

    def test_a_nested_transaction_inherits_its_parents_level(self):
        """Prefect's test_inherited_isolation_level."""
        locked = ResultStore(lock_manager=MemoryLockManager())
        with transaction(key=key(), store=locked, isolation_level=SERIALIZABLE) as top:
            nested = ResultStore(lock_manager=MemoryLockManager())
            with transaction(key=key(), store=nested) as inner:
                assert inner.isolation_level == top.isolation_level == SERIALIZABLE

    def test_serializable_without_a_lock_manager_is_refused_with_prefects_message(self):
        """Prefect's test_raises_on_unsupported_isolation_level, and the default store."""
        with pytest.raises(
            ConfigurationError,
            match="Isolation level SERIALIZABLE is not supported by provided configuration",
        ):
            with transaction(key="test", store=ResultStore(), isolation_level=SERIALIZABLE):
                pass
        with pytest.raises(ConfigurationError):  # the default store has no lock manager
            with transaction(key="test", isolation_level=SERIALIZABLE):
                pass


class TestCompetingTransactions:
    def test_a_read_waits_for_the_serializable_writer_to_commit(self, store):
        """Prefect's test_competing_read_transaction: a reader of a key that a
        SERIALIZABLE transaction holds waits, then reads what it committed."""
        name, opened, read = key(), threading.Event(), []

        def reader() -> None:
            opened.wait()
            with transaction(key=name, store=store) as txn:
                record = txn.read()
                read.append(record)

        thread = threading.Thread(target=reader)
        thread.start()
        with transaction(key=name, store=store, isolation_level=SERIALIZABLE) as txn:
            opened.set()
            thread.join(BLOCKED_FOR)
            assert thread.is_alive(), "the reader did not wait for the lock"
            txn.stage({"foo": "bar"})
        thread.join(30)
        assert read == [{"foo": "bar"}]

    def test_the_second_serializable_writer_waits_then_starts_committed(self, store):
        """Prefect's test_competing_write_transaction: the first transaction's record is
        kept; the second, once it has the lock, finds it committed and writes nothing."""
        name, first_open, release = key(), threading.Event(), threading.Event()

        def winner() -> None:
            with transaction(key=name, store=store, isolation_level=SERIALIZABLE) as txn:
                first_open.set()
                release.wait(30)
                txn.stage({"foo": "bar"})

        thread = threading.Thread(target=winner)
        thread.start()
        first_open.wait(30)
        threading.Timer(BLOCKED_FOR, release.set).start()
        with transaction(key=name, store=store, isolation_level=SERIALIZABLE) as txn:
            assert release.is_set() and txn.is_committed()
            txn.stage({"fizz": "buzz"})
        thread.join(30)
        assert store.read(name).value == {"foo": "bar"}
        assert not store.lock_manager.is_locked(name)

    def test_a_rolled_back_holder_frees_the_key_for_the_next(self, store):
        """A SERIALIZABLE block that raises releases its lock; the next one computes."""
        name = key()
        with pytest.raises(RuntimeError):
            with transaction(key=name, store=store, isolation_level=SERIALIZABLE):
                raise RuntimeError("no record")
        assert not store.lock_manager.is_locked(name)
        with transaction(key=name, store=store, isolation_level=SERIALIZABLE) as txn:
            assert not txn.is_committed()
            txn.stage(1)
        assert store.read(name).value == 1


class TestMemoryLockManager:
    def test_it_is_one_per_process_and_holders_are_checked_as_prefects(self):
        """One instance; a holder re-acquires at once, another is refused with
        ``acquire_timeout=0``; a release by another holder gets Prefect's ValueError."""
        manager: LockManager = MemoryLockManager()
        name = key()
        assert manager is MemoryLockManager()
        assert manager.acquire_lock(name, "a") and manager.acquire_lock(name, "a")
        assert not manager.acquire_lock(name, "b", acquire_timeout=0)
        assert manager.is_lock_holder(name, "a") and not manager.is_lock_holder(name, "b")
        with pytest.raises(ValueError, match=f"No lock held by b for transaction with key {name}"):
            manager.release_lock(name, "b")
        with pytest.raises(ValueError, match="No lock held by a for transaction with key free"):
            manager.release_lock("free", "a")
        manager.release_lock(name, "a")
        assert not manager.is_locked(name) and manager.wait_for_lock(name, timeout=0)

    def test_a_hold_timeout_frees_the_lock_for_a_waiter(self):
        """A waiter gets the lock once the holder's hold_timeout has passed."""
        manager, name = MemoryLockManager(), key()
        assert manager.acquire_lock(name, "a", hold_timeout=0.3)
        assert manager.acquire_lock(name, "b", acquire_timeout=30)
        assert manager.is_lock_holder(name, "b") and not manager.is_lock_holder(name, "a")
        manager.release_lock(name, "b")


HOLD_AND_PARK = """
import sys, threading
from pathlib import Path
from flowyard.locking import FileSystemLockManager
manager = FileSystemLockManager(sys.argv[1])
assert manager.acquire_lock("shared", "parked")
Path(sys.argv[2]).touch()
threading.Event().wait(120)
"""

COMPUTE_ONCE = """
import json, os, sys
from pathlib import Path
from flowyard.locking import FileSystemLockManager
from flowyard.results import LocalFileSystem, ResultStore
from flowyard.transactions import IsolationLevel, get_transaction, transaction
sys.path.insert(0, sys.argv[2])
from waiting import wait_until
folder = Path(sys.argv[1])
store = ResultStore(LocalFileSystem(folder / "records"),
                    lock_manager=FileSystemLockManager(folder / "locks"))
(folder / f"reached-{os.getpid()}").touch()
with transaction(key="once", store=store,
                 isolation_level=IsolationLevel.SERIALIZABLE) as txn:
    started_committed = txn.is_committed()
    if not started_committed:
        with open(folder / "computed.log", "a") as log:
            log.write(f"{os.getpid()}\\n")
        wait_until((folder / "go").exists, timeout=60)
        txn.stage(os.getpid())
print(json.dumps([started_committed, txn.read()]))
"""


class TestFileSystemLockManager:
    def _python(self, code: str, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def test_two_processes_compute_a_serializable_block_once(self, tmp_path):
        """Two processes run the same SERIALIZABLE transaction: the second waits for the
        first's lock, then starts committed and reads the first's record."""
        tests = str(Path(__file__).parents[1])
        first = self._python(COMPUTE_ONCE, str(tmp_path), tests)
        computed = tmp_path / "computed.log"
        wait_until(computed.exists, timeout=60)
        second = self._python(COMPUTE_ONCE, str(tmp_path), tests)
        wait_until(lambda: len(list(tmp_path.glob("reached-*"))) == 2, timeout=60)
        try:
            second.wait(BLOCKED_FOR)
        except subprocess.TimeoutExpired:
            pass
        assert second.poll() is None, second.communicate()
        (tmp_path / "go").touch()
        outputs: list[Any] = []
        for process in (first, second):
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
            outputs.append(json.loads(out))
        assert outputs == [[False, first.pid], [True, first.pid]]
        assert computed.read_text().split() == [str(first.pid)]

    def test_a_lock_ends_with_the_process_holding_it(self, tmp_path):
        """Unlike Prefect's lock files (left locked for good), a killed holder's flock is
        gone: another process's manager sees the key free and takes it."""
        locks, held = tmp_path / "locks", tmp_path / "held"
        holder = self._python(HOLD_AND_PARK, str(locks), str(held))
        try:
            wait_until(held.exists, timeout=60)
            manager = FileSystemLockManager(locks)
            assert manager.is_locked("shared")
            assert not manager.acquire_lock("shared", "me", acquire_timeout=0)
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(30)
        assert wait_until(lambda: not manager.is_locked("shared"), timeout=30)
        assert manager.acquire_lock("shared", "me", acquire_timeout=30)
        assert manager.is_lock_holder("shared", "me")
        with pytest.raises(ValueError, match="No lock held by other for transaction"):
            manager.release_lock("shared", "other")
        manager.release_lock("shared", "me")
        with pytest.raises(ValueError, match="No lock for transaction with key shared"):
            manager.release_lock("shared", "me")

    def test_threads_of_one_process_exclude_each_other_and_hold_timeout_is_refused(self, tmp_path):
        """Two managers on one folder in one process: the second waits for the first's
        lock (flock excludes open files, not only processes); ``hold_timeout`` is refused."""
        first, second = FileSystemLockManager(tmp_path), FileSystemLockManager(tmp_path)
        assert first == second
        assert first.acquire_lock("k", "a")
        assert not second.acquire_lock("k", "b", acquire_timeout=0)
        threading.Timer(0.2, first.release_lock, ("k", "a")).start()
        assert second.acquire_lock("k", "b", acquire_timeout=30)
        second.release_lock("k", "b")
        with pytest.raises(ValueError, match="takes no hold_timeout"):
            first.acquire_lock("k", "a", hold_timeout=5)


class TestCachePolicyConfiguration:
    """Prefect's TestPolicyConfiguration (tests/test_cache_policies.py), the lock parts."""

    def test_configure_returns_a_new_policy_and_none_changes_nothing(self):
        """configure() copies the policy; None for both leaves it equal to the original."""
        policy = INPUTS.configure(lock_manager="/path/to/locks", isolation_level="SERIALIZABLE")
        assert policy is not INPUTS and INPUTS.lock_manager is None
        assert (policy.lock_manager, policy.isolation_level) == ("/path/to/locks", "SERIALIZABLE")
        assert Inputs().configure(lock_manager=None, isolation_level=None) == Inputs()

    def test_added_policies_keep_the_configuration_and_refuse_two_different_ones(self):
        """A sum (and a difference) keeps the configuration; conflicts raise ValueError."""
        policy = Inputs() + TaskSource().configure(
            lock_manager="original_locks", isolation_level="SERIALIZABLE"
        )
        assert (policy.lock_manager, policy.isolation_level) == ("original_locks", "SERIALIZABLE")
        assert (policy - "x").lock_manager == "original_locks"
        with pytest.raises(ValueError, match="different lock implementations"):
            policy + TaskSource().configure(lock_manager="other_locks")
        with pytest.raises(ValueError, match="different isolation levels"):
            policy + TaskSource().configure(isolation_level="READ_COMMITTED")


class TestSerializableTasks:
    def test_a_task_in_a_serializable_transaction_inherits_its_level(self):
        """Prefect's test_run_task_in_serializable_transaction."""

        @task
        def my_task() -> Any:
            return get_transaction()

        with transaction(
            isolation_level=SERIALIZABLE, store=ResultStore(lock_manager=MemoryLockManager())
        ):
            task_txn = my_task()
        assert task_txn is not None and task_txn.isolation_level == SERIALIZABLE

    def test_the_same_call_twice_in_one_serializable_block_runs_twice_without_waiting(self):
        """Both runs hold the key for the one block around them: the second runs (its
        result is written at the commit, as without locks) where Prefect 3.9.1's second
        call waits forever for the first's lock; the key is free after the block."""
        calls: list[int] = []
        name, store = key(), ResultStore(lock_manager=MemoryLockManager())

        @task(cache_key_fn=lambda context, parameters: name)
        def f(x: int) -> int:
            calls.append(x)
            return x

        def block() -> None:
            with transaction(isolation_level=SERIALIZABLE, store=store):
                f(1)
                f(1)

        thread = threading.Thread(target=block, daemon=True)
        thread.start()
        thread.join(60)
        assert not thread.is_alive(), "the second call waited for the first's lock"
        assert calls == [1, 1] and not MemoryLockManager().is_locked(name)

    def test_a_block_that_starts_committed_frees_the_locks_of_the_runs_inside(self, store):
        """A committed-at-start block commits nothing inside it; the lock a cached run
        inside took on its key is freed as the block ends all the same."""
        name, cache_key = key(), key()
        with transaction(key=name, store=store) as txn:
            txn.stage(1)

        @task(cache_key_fn=lambda context, parameters: cache_key)
        def f() -> int:
            return 2

        with transaction(key=name, store=store, isolation_level=SERIALIZABLE) as txn:
            assert txn.is_committed() and f() == 2
            assert MemoryLockManager().is_locked(cache_key)
        assert not MemoryLockManager().is_locked(cache_key)
        assert not MemoryLockManager().is_locked(name)

    def test_a_memory_lock_manager_unpickles_as_the_receiving_processes_one(self):
        """As Prefect's: a policy holding it can travel to another process."""
        policy = INPUTS.configure(lock_manager=MemoryLockManager(), isolation_level=SERIALIZABLE)
        assert pickle.loads(pickle.dumps(policy)).lock_manager is MemoryLockManager()

    def test_the_lock_file_exists_while_the_task_runs(self, tmp_path):
        """Prefect's test_cache_policy_lock_manager: the run holds ``<key>.lock``."""
        policy = INPUTS.configure(
            lock_manager=FileSystemLockManager(lock_files_directory=tmp_path),
            isolation_level=IsolationLevel.SERIALIZABLE,
        )
        expected = policy.compute_key(task_ctx=None, inputs={"x": 1}, flow_parameters=None)

        @task(cache_policy=policy)
        def foo(x: int) -> int:
            assert FileSystemLockManager(tmp_path).is_locked(expected)
            assert (tmp_path / f"{expected}.lock").exists()
            return x

        assert foo(1) == 1
        assert not FileSystemLockManager(tmp_path).is_locked(expected)

    def test_serializable_without_a_lock_manager_fails_the_call(self):
        """Prefect's test_cache_policy_serializable_isolation_level_with_no_manager."""

        @task(cache_policy=INPUTS.configure(isolation_level=SERIALIZABLE))
        def foo(x: int) -> int:
            return x

        with pytest.raises(ConfigurationError, match="not supported by provided configuration"):
            foo(1)

    def test_two_threads_calling_a_serializable_cached_task_compute_once(self):
        """The second call waits on the cache key's lock, then reads the first's result."""
        calls, release = [], threading.Event()
        policy = INPUTS.configure(isolation_level=SERIALIZABLE, lock_manager=MemoryLockManager())

        @task(cache_policy=policy)
        def slow(x: str) -> str:
            calls.append(threading.get_ident())
            release.wait(30)
            return f"{x}-{threading.get_ident()}"

        results: list[str] = []
        name = key()
        threads = [threading.Thread(target=lambda: results.append(slow(name))) for _ in range(2)]
        threads[0].start()
        wait_until(lambda: calls, timeout=30)
        threads[1].start()
        threads[1].join(BLOCKED_FOR)
        release.set()
        for thread in threads:
            thread.join(30)
        assert len(calls) == 1 and len(results) == 2 and len(set(results)) == 1


CACHED_TASK_ONCE = """
import json, os, sys
from pathlib import Path
from flowyard import flow, task
from flowyard.cache_policies import INPUTS
from flowyard.locking import FileSystemLockManager
from flowyard.results import LocalFileSystem
from flowyard.transactions import IsolationLevel
sys.path.insert(0, sys.argv[2])
from waiting import wait_until
folder = Path(sys.argv[1])
policy = INPUTS.configure(isolation_level=IsolationLevel.SERIALIZABLE,
                          lock_manager=FileSystemLockManager(folder / "locks"))

@task(cache_policy=policy, result_storage=LocalFileSystem(folder / "results"))
def compute(n: int) -> int:
    with open(folder / "computed.log", "a") as log:
        log.write(f"{os.getpid()}\\n")
    wait_until((folder / "go").exists, timeout=60)
    return os.getpid()

@flow
def program() -> int:
    (folder / f"reached-{os.getpid()}").touch()
    return compute(7)

print(json.dumps(program()))
"""


def test_two_processes_running_a_serializable_cached_task_compute_once(tmp_path):
    """Two flow runs in two processes call the same cached task with a file-system lock
    manager: the second waits for the first's lock, then reads its result from the cache."""
    run = TestFileSystemLockManager()._python
    tests = str(Path(__file__).parents[1])
    first = run(CACHED_TASK_ONCE, str(tmp_path), tests)
    computed = tmp_path / "computed.log"
    wait_until(computed.exists, timeout=60)
    second = run(CACHED_TASK_ONCE, str(tmp_path), tests)
    wait_until(lambda: len(list(tmp_path.glob("reached-*"))) == 2, timeout=60)
    try:
        second.wait(BLOCKED_FOR)
    except subprocess.TimeoutExpired:
        pass
    (tmp_path / "go").touch()
    outputs = []
    for process in (first, second):
        out, err = process.communicate(timeout=90)
        assert process.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert outputs == [first.pid, first.pid]
    assert computed.read_text().split() == [str(first.pid)]


class TestAsyncTransaction:
    """Prefect's TestIsolationLevel.TestAsyncTransaction and competing transactions, with
    ``atransaction``."""

    def test_levels_are_inherited_and_serializable_needs_a_lock_manager(self):
        """The default level, the parent's level, and Prefect's ConfigurationError."""

        async def program() -> tuple[object, object]:
            async with atransaction(key="test") as plain:
                default = plain.isolation_level
            locked = ResultStore(lock_manager=MemoryLockManager())
            async with atransaction(key=key(), store=locked, isolation_level=SERIALIZABLE):
                async with atransaction(key=key(), store=locked) as inner:
                    inherited = inner.isolation_level
            with pytest.raises(ConfigurationError, match="not supported by provided"):
                async with atransaction(key="t", store=ResultStore(), isolation_level=SERIALIZABLE):
                    pass
            return default, inherited

        assert asyncio.run(program()) == (IsolationLevel.READ_COMMITTED, SERIALIZABLE)

    def test_serializable_works_across_asyncio_tasks(self):
        """Prefect's test_serializable_isolation_works_with_multiple_asyncio_tasks (its
        issue 18600): a child transaction in another asyncio task commits with its parent."""

        async def child_task() -> None:
            store = ResultStore(lock_manager=MemoryLockManager())
            async with atransaction(key="child", store=store, isolation_level=SERIALIZABLE) as txn:
                txn.stage({"foo": "bar"})

        async def parent_task() -> None:
            store = ResultStore(lock_manager=MemoryLockManager())
            async with atransaction(key="parent", store=store, isolation_level=SERIALIZABLE):
                await asyncio.create_task(child_task())

        asyncio.run(parent_task())
        assert ResultStore().read("child").value == {"foo": "bar"}
        assert not MemoryLockManager().is_locked("child")

    def test_waiting_for_a_lock_leaves_the_event_loop_free(self, store):
        """A second async SERIALIZABLE transaction waits for the first's lock in a thread:
        the loop goes on (here, it lets the first commit), and it starts committed. Made in
        the first's block, it outlives it: its lock is freed as it ends all the same."""
        name = key()

        async def program() -> bool:
            first = atransaction(key=name, store=store, isolation_level=SERIALIZABLE)
            await first.__aenter__()

            async def second() -> bool:
                async with atransaction(key=name, store=store, isolation_level=SERIALIZABLE) as txn:
                    return txn.is_committed()

            waiting = asyncio.create_task(second())
            await asyncio.sleep(0)  # the second starts waiting  # noqa: TID251
            first.stage(1)
            await first.__aexit__(None, None, None)
            return await asyncio.wait_for(waiting, 30)

        assert asyncio.run(program()) is True
        assert store.read(name).value == 1


def test_a_path_as_a_lock_manager_fails_the_serializable_run_clearly(tmp_path):
    """Prefect 3.9.1 gives a string no meaning: ``configure(lock_manager="/dir")`` keeps
    it (ignored under READ_COMMITTED), a SERIALIZABLE run fails with "'str' object has no
    attribute 'acquire_lock'", and ``ResultStore(lock_manager="/dir")`` is a validation
    error. The same here, with an error naming the manager the path would mean."""
    path = str(tmp_path / "locks")

    @task(cache_policy=INPUTS.configure(lock_manager=path))
    def read_committed(x: int) -> int:
        return x + 1

    @task(cache_policy=INPUTS.configure(lock_manager=path, isolation_level="SERIALIZABLE"))
    def serializable(x: int) -> int:
        return x + 1

    assert read_committed(1) == 2
    with pytest.raises(TypeError, match=rf"not str \(.*FileSystemLockManager\('{path}'\)"):
        serializable(1)
    with pytest.raises(TypeError, match=r"not PosixPath"):
        ResultStore(lock_manager=tmp_path)  # type: ignore[arg-type]
    assert not (tmp_path / "locks").exists()
    manager = FileSystemLockManager(tmp_path / "locks")
    assert ResultStore(lock_manager=manager).supports_isolation_level("SERIALIZABLE")
