"""Prefect 3 docs, caching and results: "How to cache workflow step outputs", the
"Caching" concept page and "How to persist and retrieve workflow results".

Each example is the doc's code with ``prefect`` → ``flowyard`` in imports; where the doc
sleeps 10 seconds to show a slow body, the body is counted instead of slept. Results go
to a fresh ``FLOWYARD_HOME`` per test (see conftest).
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta

from flowyard import flow, task
from flowyard.cache_policies import INPUTS, TASK_SOURCE


class TestCacheWorkflowSteps:
    def test_persist_result_caches_with_the_default_policy(self):
        """persist_result=True caches on inputs + source + flow run: the second add_one(1)."""
        states = []

        @task(persist_result=True)
        def add_one(x: int):
            return x + 1

        @flow
        def my_flow():
            states.append(add_one(1, return_state=True))  # will not be cached
            states.append(add_one(1, return_state=True))  # will be cached
            states.append(add_one(2, return_state=True))  # will not be cached

        my_flow()
        assert [s.name for s in states] == ["Completed", "Cached", "Completed"]
        assert [s.result() for s in states] == [2, 2, 3]
        my_flow()  # another flow run: the run id is part of the key, so nothing is cached
        assert [s.name for s in states[3:]] == ["Completed", "Cached", "Completed"]

    def test_cache_based_on_inputs(self):
        """cache_policy=INPUTS: the body runs for x=1 once and for x=2 once."""
        bodies = []

        @task(cache_policy=INPUTS)
        def my_stateful_task(x: int):
            print("sleeping")
            bodies.append(x)  # the doc sleeps 10 s here
            return x + 1

        assert my_stateful_task(x=1) == 2  # sleeps
        assert my_stateful_task(x=1) == 2  # does not sleep
        assert my_stateful_task(x=2) == 3  # sleeps
        assert bodies == [1, 2]

    def test_cache_based_on_a_subset_of_inputs(self):
        """INPUTS - 'debug' ignores the debug flag."""
        bodies = []

        @task(cache_policy=INPUTS - "debug")
        def my_stateful_task(x: int, debug: bool = False):
            print("sleeping")
            bodies.append((x, debug))  # the doc sleeps 10 s here
            return x + 1

        my_stateful_task(x=1)  # sleeps
        my_stateful_task(x=1, debug=True)  # does not sleep
        my_stateful_task(x=1, debug=False)  # does not sleep
        assert bodies == [(1, False)]

    def test_cache_with_an_expiration(self):
        """The cached state carries an expiration ten seconds after the write."""

        @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=10))
        def my_stateful_task(x: int):
            print("sleeping")
            return x + 1

        before = datetime.now(UTC)
        first = my_stateful_task(x=1, return_state=True)  # sleeps
        second = my_stateful_task(x=1, return_state=True)  # does not sleep
        assert (first.name, second.name) == ("Completed", "Cached")
        assert second.cache_expiration is not None
        lasts = second.cache_expiration - before
        assert timedelta(seconds=9) < lasts <= timedelta(seconds=11)

    def test_refresh_cache_ignores_the_cache(self):
        """refresh_cache=True recomputes every time."""

        @task(cache_policy=TASK_SOURCE, refresh_cache=True)
        def never_caching_task():
            return random.random()

        assert never_caching_task() != never_caching_task()

    def test_refresh_cache_false_reads_the_cache(self):
        """refresh_cache=False with TASK_SOURCE: the second call reads the first value."""

        @task(cache_policy=TASK_SOURCE, refresh_cache=False)
        def caching_task():
            return random.random()

        assert caching_task() == caching_task()

    def test_refresh_cache_through_with_options(self):
        """task.with_options(refresh_cache=True) recomputes and rewrites the record."""

        @task(cache_policy=TASK_SOURCE)
        def caching_task():
            return random.random()

        first = caching_task()
        refreshed = caching_task.with_options(refresh_cache=True)()
        assert refreshed != first and caching_task() == refreshed

    def test_policies_combined_with_plus(self):
        """INPUTS + TASK_SOURCE: same inputs and source hit the cache."""

        @task(cache_policy=INPUTS + TASK_SOURCE)
        def my_task(x: int):
            return x + 1

        assert my_task(1, return_state=True).name == "Completed"
        assert my_task(1, return_state=True).name == "Cached"
        assert my_task(2, return_state=True).name == "Completed"


class TestCachingConcept:
    def test_task_source_plus_inputs(self):
        """TASK_SOURCE + INPUTS reruns for a new x."""
        runs = []

        @task(cache_policy=TASK_SOURCE + INPUTS)
        def my_cached_task(x: int):
            runs.append(x)
            return x + 42

        assert [my_cached_task(1), my_cached_task(1), my_cached_task(2)] == [43, 43, 44]
        assert runs == [1, 2]

    def test_subtracting_an_input(self):
        """my_cached_task(1, debug=True) still uses the cache."""

        my_custom_policy = INPUTS - "debug"

        @task(cache_policy=my_custom_policy)
        def my_cached_task(x: int, debug: bool = False):
            print("running...")
            return x + 42

        my_cached_task(1)
        assert my_cached_task(1, debug=True, return_state=True).name == "Cached"

    def test_cache_key_function(self):
        """A constant cache key: every call after the first reads the first result."""

        def static_cache_key(context, parameters):
            # return a constant
            return "static cache key"

        @task(cache_key_fn=static_cache_key)
        def my_cached_task(x: int):
            return x + 1

        assert my_cached_task(1) == 2
        assert my_cached_task(5) == 2


class TestResults:
    def test_with_options_persist_result_false(self):
        """An unpersisted copy of a cached task never reads or writes the cache. (The task
        takes an input: with none, ``INPUTS`` gives no key and nothing is cached, as
        Prefect 3.9.1 runs such a task three times here.)"""
        calls = []

        @task(cache_policy=INPUTS)
        def my_task(x: int):
            calls.append(1)
            return 42

        unpersisted_task = my_task.with_options(persist_result=False)

        @flow
        def my_flow():
            my_task(1)
            unpersisted_task(1)
            my_task(1)

        my_flow()
        assert len(calls) == 2

    def test_result_storage_key(self, tmp_path):
        """result_storage_key names the record file from the task's parameters."""
        calls = []

        storage = tmp_path / "results"  # apart from FLOWYARD_HOME (tmp_path / "home")

        @task(result_storage_key="hello-{parameters[name]}.pickle", result_storage=str(storage))
        def hello_world(name: str = "world"):
            calls.append(name)
            return f"hello {name}"

        @flow
        def my_flow():
            hello_world()
            hello_world(name="foo")
            hello_world(name="bar")

        my_flow()
        assert sorted(os.listdir(storage)) == [
            "hello-bar.pickle",
            "hello-foo.pickle",
            "hello-world.pickle",
        ]
        my_flow()  # the records exist: the task loads them without running
        assert calls == ["world", "foo", "bar"]

    def test_cache_result_in_memory_false(self):
        """cache_result_in_memory=False still returns the values."""

        @flow(cache_result_in_memory=False)
        def foo():
            return "pretend this is large data"

        @task(cache_result_in_memory=False)
        def bar():
            return "pretend this is biiiig data"

        assert foo() == "pretend this is large data"
        assert bar() == "pretend this is biiiig data"
