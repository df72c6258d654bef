"""Caching and results: keys, persisted records, hits across processes, expiry and refresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from flowyard import flow, task
from flowyard.cache_policies import INPUTS, NONE, TASK_SOURCE
from flowyard.results import LocalFileSystem
from flowyard.tasks import task_input_hash

SCRIPT = """
import sys
from datetime import timedelta
from pathlib import Path

from flowyard import flow, task
from flowyard.tasks import task_input_hash

COUNTER = Path(sys.argv[1])
EXPIRES = timedelta(seconds=float(sys.argv[2]))
REFRESH = sys.argv[3] == "refresh"


@task(cache_key_fn=task_input_hash, cache_expiration=EXPIRES, refresh_cache=REFRESH)
def expensive(n: int) -> int:
    COUNTER.write_text(COUNTER.read_text() + "x" if COUNTER.exists() else "x")
    return n * 100


@flow
def f() -> int:
    return expensive(7)


print(f())
"""


def run_script(tmp_path: Path, expires: float, refresh: str = "") -> str:
    script = tmp_path / "cached.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "FLOWYARD_HOME": str(tmp_path / "home")}
    env.pop("FLOWYARD_API_URL", None)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "calls"), str(expires), refresh or "-"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "700\n"
    return done.stderr


class TestAcrossProcesses:
    def test_a_second_process_reads_the_cached_result(self, tmp_path):
        """The second process gets the persisted result and skips the task."""
        run_script(tmp_path, 3600)
        err = run_script(tmp_path, 3600)
        assert (tmp_path / "calls").read_text() == "x"
        assert "Finished in state Cached(type=COMPLETED)" in err
        assert any((tmp_path / "home" / "storage").iterdir())

    def test_an_expired_record_is_recomputed(self, tmp_path):
        """With a 1 ms expiration the next process runs the task again."""
        run_script(tmp_path, 0.001)
        run_script(tmp_path, 0.001)
        assert (tmp_path / "calls").read_text() == "xx"

    def test_refresh_cache_recomputes(self, tmp_path):
        """refresh_cache=True runs the task despite a valid record, and rewrites it."""
        run_script(tmp_path, 3600)
        run_script(tmp_path, 3600, "refresh")
        run_script(tmp_path, 3600)
        assert (tmp_path / "calls").read_text() == "xx"


class TestPolicies:
    def test_inputs_policy_keys_on_arguments(self, tmp_path):
        """INPUTS + TASK_SOURCE: same inputs hit, other inputs miss."""
        calls: list[int] = []

        @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=str(tmp_path))
        def square(n: int) -> int:
            calls.append(n)
            return n * n

        @flow
        def f() -> list[int]:
            return [square(2), square(2), square(3)]

        assert f() == [4, 4, 9] and calls == [2, 3]

    def test_none_policy_never_caches(self, tmp_path):
        """cache_policy=NONE runs every time and persists nothing."""
        calls: list[int] = []

        @task(cache_policy=NONE, result_storage=str(tmp_path))
        def one() -> int:
            calls.append(1)
            return 1

        one()
        one()
        assert len(calls) == 2 and not list(tmp_path.iterdir())

    def test_inputs_minus_a_parameter(self, tmp_path):
        """INPUTS - 'debug' ignores that argument in the key."""
        calls: list[bool] = []

        @task(cache_policy=INPUTS - "debug", result_storage=str(tmp_path))
        def load(n: int, debug: bool = False) -> int:
            calls.append(debug)
            return n

        load(1)
        load(1, debug=True)
        assert calls == [False]

    def test_task_input_hash_is_stable_and_sensitive(self):
        """The same task and inputs give the same key; other inputs another."""

        @task
        def t(x: int) -> int:
            return x

        class Ctx:
            task = t

        assert task_input_hash(Ctx, {"x": 1}) == task_input_hash(Ctx, {"x": 1})
        assert task_input_hash(Ctx, {"x": 1}) != task_input_hash(Ctx, {"x": 2})


class TestResults:
    def test_unpicklable_result_fails_naming_the_task(self, tmp_path):
        """A result pickle cannot encode fails the run with a message naming the task."""

        @task(persist_result=True, result_storage=LocalFileSystem(tmp_path))
        def make_lock() -> object:
            return threading.Lock()

        state = make_lock(return_state=True)
        assert state.is_failed()
        assert "task 'make_lock'" in state.message and "pickle" in state.message

    def test_json_serializer_writes_readable_records(self, tmp_path):
        """result_serializer='json' stores the value as JSON text in the record (as
        Prefect's JSON serializer does)."""

        @task(persist_result=True, result_storage=str(tmp_path), result_serializer="json")
        def data() -> dict[str, int]:
            return {"a": 1}

        assert data() == {"a": 1}
        [record] = list(tmp_path.iterdir())
        document = json.loads(record.read_bytes())
        assert document["metadata"]["serializer"]["type"] == "json"
        assert document["result"] == '{"a": 1}'

    def test_cache_expiration_in_process(self, tmp_path):
        """A zero expiration never hits; a long one does."""
        calls: list[int] = []

        def make(expiry: timedelta):
            @task(cache_key_fn=lambda ctx, p: "k", cache_expiration=expiry,
                  result_storage=str(tmp_path))  # fmt: skip
            def t() -> int:
                calls.append(1)
                return 1

            return t

        make(timedelta(0))()
        make(timedelta(0))()
        assert len(calls) == 2
        make(timedelta(hours=1))()
        make(timedelta(hours=1))()
        assert len(calls) == 3


@pytest.mark.parametrize("bad", ["yaml"])
def test_unknown_serializer_is_refused(bad, tmp_path):
    """An unknown serializer name is an error naming the choices."""

    @task(persist_result=True, result_storage=str(tmp_path), result_serializer=bad)
    def t() -> int:
        return 1

    with pytest.raises(ValueError, match="use 'pickle' or 'json'"):
        t()


def test_a_storage_string_is_a_folder_unless_it_names_a_storage_block_type(tmp_path, monkeypatch):
    """``"secret/results"`` is a relative folder (a secret block cannot hold results);
    ``"s3-bucket/x"`` would be a saved block, loaded at run time."""
    from flowyard.sdk.results import _block_type_of, get_storage

    monkeypatch.chdir(tmp_path)
    storage = get_storage("secret/results")
    assert isinstance(storage, LocalFileSystem) and storage.basepath == Path("secret/results")
    assert _block_type_of("s3-bucket/x") == "s3-bucket"
    assert _block_type_of("local-file-system/x") == "local-file-system"
    assert _block_type_of("secret/x") is None and _block_type_of("s3-bucket/a/b") is None
