"""Cache policy arithmetic and keys, as Prefect 3.9.1's ``tests/test_cache_policies.py``.

Each expectation was checked by running the same program against Prefect 3.9.1.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pytest

from flowyard import flow, task
from flowyard.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    RUN_ID,
    TASK_SOURCE,
    CompoundCachePolicy,
    Inputs,
    RunId,
    TaskSource,
)


def parts(policy: CompoundCachePolicy) -> list[str]:
    """``['TaskSource', 'RunId', "Inputs['y']"]``, as the oracle script printed them."""
    return [
        type(p).__name__ + (str(p.exclude) if isinstance(p, Inputs) else "")
        for p in policy.policies
    ]


def key(policy, inputs=None, task_ctx=None, flow_parameters=None) -> str | None:
    return policy.compute_key(task_ctx=task_ctx, inputs=inputs, flow_parameters=flow_parameters)


@dataclass
class Run:
    id: str
    flow_run_id: str | None = None


@dataclass
class TaskCtx:
    task_run: Run
    task: object = None


class TestSubtraction:
    def test_default_minus_a_name_leaves_that_input_out(self):
        """``DEFAULT - "y"`` is a compound whose key ignores ``y`` (Prefect's
        ``test_creation_via_subtraction``; oracle: ``['TaskSource', 'RunId', "Inputs['y']"]``)."""
        policy = DEFAULT - "y"
        assert isinstance(policy, CompoundCachePolicy)
        assert parts(policy) == ["TaskSource", "RunId", "Inputs['y']"]
        assert parts(policy - "z") == ["TaskSource", "RunId", "Inputs['y', 'z']"]
        assert key(policy, {"x": 42, "y": "foo"}) == key(
            RunId() + Inputs(exclude=["y"]), {"x": 42, "y": "foo"}
        )
        assert key(policy, {"x": 42, "y": "foo"}) == key(policy, {"x": 42, "y": "bar"})
        assert key(policy, {"x": 42}) != key(policy, {"x": 43})

    def test_inputs_minus_names_accumulates_in_a_new_policy(self):
        """``INPUTS - "x" - "y"`` excludes both and leaves ``INPUTS`` as it was (Prefect's
        ``test_subtraction_results_in_new_policy_for_inputs``,
        ``test_excluded_can_be_manipulated_via_subtraction``)."""
        policy = INPUTS - "x" - "y"
        assert policy.exclude == ["x", "y"] and INPUTS.exclude == []
        assert key(policy, {"z": 1, "x": 2, "y": 3}) == key(policy, {"z": 1})

    @pytest.mark.parametrize(
        "policy", [TASK_SOURCE, RUN_ID, NO_CACHE, TASK_SOURCE + RUN_ID], ids=repr
    )
    def test_is_a_noop_on_policies_without_inputs(self, policy):
        """Subtracting from a policy that does not look at inputs gives it back (Prefect's
        ``test_subtraction_is_noop_for_non_inputs_policies``; oracle: ``True`` for each)."""
        assert (policy - "x") is policy

    @pytest.mark.parametrize("policy", [INPUTS, TASK_SOURCE, DEFAULT], ids=repr)
    @pytest.mark.parametrize("other", [["x"], 3], ids=repr)
    def test_only_a_name_can_be_subtracted(self, policy, other):
        """Anything but a string raises Prefect's ``TypeError``."""
        with pytest.raises(TypeError, match=r"^Can only subtract strings from key policies\.$"):
            policy - other


class TestAddition:
    def test_compounds_are_flattened_and_their_inputs_merged(self):
        """Nested compounds flatten; every ``Inputs`` part becomes one, last, with the
        excludes of all (Prefect's ``test_nested_compound_policies_are_flattened``,
        ``test_compound_policy_deduplicates_inputs_on_subtraction``)."""
        nested = CompoundCachePolicy(
            policies=[CompoundCachePolicy(policies=[Inputs(), TaskSource()]), RunId()]
        )
        assert parts(nested) == ["TaskSource", "RunId", "Inputs[]"]
        assert parts((INPUTS - "x") + (INPUTS - "y")) == ["Inputs['x', 'y']"]
        merged = CompoundCachePolicy(policies=[INPUTS - "a", TASK_SOURCE]) - "b"
        assert parts(merged) == ["TaskSource", "Inputs['a', 'b']"]
        assert parts(DEFAULT + INPUTS) == ["TaskSource", "RunId", "Inputs[]"]

    def test_no_cache_adds_nothing(self):
        """``NO_CACHE + p`` and ``p + NO_CACHE`` are ``p`` (Prefect's
        ``test_addition_of_none_is_noop``); on a compound it stays as a part that gives
        no key (oracle: ``['TaskSource', 'RunId', '_None', 'Inputs[]']``)."""
        assert (NO_CACHE + INPUTS) is INPUTS and (INPUTS + NO_CACHE) is INPUTS
        with_none = DEFAULT + NO_CACHE
        assert parts(with_none) == ["TaskSource", "RunId", "_None", "Inputs[]"]
        ctx = TaskCtx(Run(id="t", flow_run_id="f"), task=lambda: None)
        assert key(with_none, {"x": 1}, ctx) == key(DEFAULT, {"x": 1}, ctx)


class TestKeys:
    def test_parts_without_a_key_are_ignored(self):
        """A compound hashes the keys its parts gave; none at all is no key (Prefect's
        ``test_nones_are_ignored``). ``INPUTS`` with no inputs and ``FLOW_PARAMETERS``
        with no parameters give none."""
        assert key(CompoundCachePolicy(policies=[NO_CACHE, NO_CACHE]), {"z": [1, 2]}) is None
        assert key(INPUTS, {}) is None and key(FLOW_PARAMETERS, {}, flow_parameters={}) is None
        with_none = CompoundCachePolicy(policies=[NO_CACHE, INPUTS])
        assert key(with_none, {"x": 1}) == key(CompoundCachePolicy(policies=[INPUTS]), {"x": 1})

    def test_run_id_is_the_flow_run_else_the_task_run(self):
        """Four runs, four keys (Prefect's ``test_changing_the_run_id_busts_the_cache``)."""

        def my_task() -> None:
            pass

        runs = [Run("a", "a"), Run("b", "b"), Run("c"), Run("d")]
        keys = {key(DEFAULT, None, TaskCtx(run, task=my_task)) for run in runs}
        assert len(keys) == 4

    def test_changing_the_source_busts_the_cache(self):
        """Prefect's ``test_changing_the_source_busts_the_cache``."""
        run = Run(id="a", flow_run_id="b")
        one = key(DEFAULT, None, TaskCtx(run, task=lambda: "foo"))
        two = key(DEFAULT, None, TaskCtx(run, task=lambda: "bar"))
        assert one != two


class TestUnhashableInputs:
    def test_inputs_policy_raises_a_value_error_naming_the_way_out(self):
        """A lock among the inputs: ``ValueError`` with Prefect's explanation (the JSON
        encoder's own words differ; the oracle printed the pickle error and this hint)."""
        with pytest.raises(ValueError) as raised:
            key(INPUTS, {"lock": threading.Lock()})
        message = str(raised.value)
        assert message.startswith("Unable to create hash - objects could not be serialized.")
        assert "Pickle error: cannot pickle '_thread.lock' object" in message
        assert "like locks, file handles, or other system resources" in message
        assert "2. Disable caching by passing `cache_policy=NO_CACHE`" in message

    def test_a_task_with_a_lock_runs_uncached_unless_the_lock_is_left_out(self, caplog, tmp_path):
        """Oracle: ``runs: [('Completed', 2), ('Completed', 2), ('Completed', 3),
        ('Cached', 3)]``, ``calls: [1, 1, ('ex', 1)]`` and one ERROR record per
        uncached run on the task run logger."""
        calls: list[object] = []

        @task(persist_result=True, result_storage=str(tmp_path))
        def uses_lock(x: int, lock: object) -> int:
            calls.append(x)
            return x * 2

        @task(persist_result=True, result_storage=str(tmp_path), cache_policy=DEFAULT - "lock")
        def uses_lock_excluded(x: int, lock: object) -> int:
            calls.append(("ex", x))
            return x * 3

        @flow
        def f() -> list[tuple[str, int]]:
            lock = threading.Lock()
            states = [uses_lock(1, lock, return_state=True) for _ in range(2)]
            states += [uses_lock_excluded(1, lock, return_state=True) for _ in range(2)]
            return [(s.name, s.result()) for s in states]

        assert f() == [("Completed", 2), ("Completed", 2), ("Completed", 3), ("Cached", 3)]
        assert calls == [1, 1, ("ex", 1)]
        logged = [r for r in caplog.records if "computing cache key" in r.getMessage()]
        assert [(r.name, r.levelname) for r in logged] == [("flowyard.task_runs", "ERROR")] * 2
        assert all(r.exc_info[0] is ValueError for r in logged)


PANDAS_KEYS = """
import json
import pandas as pd
from flowyard.cache_policies import INPUTS

def key(df):
    return INPUTS.compute_key(task_ctx=None, inputs={"df": df}, flow_parameters={})

frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
derived = pd.DataFrame({"a": [1, 1, 2]}).drop_duplicates(ignore_index=True)
print(json.dumps({
    "frame": key(frame),
    "series": INPUTS.compute_key(task_ctx=None, inputs={"s": frame["a"]}, flow_parameters={}),
    "derived_is_fresh": key(derived) == key(pd.DataFrame({"a": [1, 2]})),
    "other_content": key(pd.DataFrame({"a": [1, 2, 4], "b": ["x", "y", "z"]})) != key(frame),
    "renamed": key(frame.rename(columns={"a": "A"})) != key(frame),
}))
"""


class TestPandasInputs:
    def test_a_dataframe_gives_the_same_key_in_every_process(self):
        """As Prefect 3.9.1's (whose JSON encoder refuses a DataFrame, so that it hashes
        its pickle): the same content in two processes gives one key, a frame made by
        another route with the same content too; other values or column names another."""
        pytest.importorskip("pandas")
        import json
        import os
        import subprocess
        import sys

        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        command = [sys.executable, "-c", PANDAS_KEYS]
        runs = [subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)]
        runs.append(subprocess.run(command, env=env, capture_output=True, text=True, timeout=120))
        assert [run.returncode for run in runs] == [0, 0], runs[0].stderr
        seen = [json.loads(run.stdout) for run in runs]
        assert seen[0] == seen[1]
        assert seen[0]["derived_is_fresh"] and seen[0]["other_content"] and seen[0]["renamed"]
        assert seen[0]["frame"] and seen[0]["series"] and seen[0]["frame"] != seen[0]["series"]
