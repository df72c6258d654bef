"""Examples in the style of Prefect's flow and task docs, with ``prefect`` → ``flowyard``."""

from __future__ import annotations

from flowyard import flow, task
from flowyard.tasks import task_input_hash


class TestDocsExamples:
    def test_hello_world_with_log_prints(self, capsys):
        """The docs' first flow: a flow with log_prints calling a task."""

        @task
        def say_hello(name: str) -> str:
            return f"Hello, {name}!"

        @flow(log_prints=True)
        def hello_world(name: str = "world") -> str:
            message = say_hello(name)
            print(message)
            return message

        assert hello_world() == "Hello, world!"
        assert "Hello, world!" in capsys.readouterr().err

    def test_submit_and_collect(self):
        """Tasks submitted concurrently, results collected with .result()."""

        @task
        def square_num(num: int) -> int:
            return num**2

        @flow
        def sum_squares(nums: list[int]) -> int:
            futures = [square_num.submit(n) for n in nums]
            return sum(f.result() for f in futures)

        assert sum_squares([1, 2, 3]) == 14

    def test_map_then_reduce(self):
        """map over a list, then pass the futures to a reducing task."""

        @task
        def add_one(x: int) -> int:
            return x + 1

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        @flow
        def pipeline() -> int:
            futures = add_one.map([1, 2, 3])
            return total(futures)

        assert pipeline() == 9

    def test_retries_and_cache_key_fn(self, tmp_path):
        """A task with retries and a cache keyed on its inputs."""
        attempts: list[int] = []

        @task(retries=2, cache_key_fn=task_input_hash, result_storage=str(tmp_path))
        def fetch(url: str) -> str:
            attempts.append(1)
            if len(attempts) < 2:
                raise ConnectionError("flaky network")
            return f"data from {url}"

        @flow
        def fetch_twice() -> list[str]:
            return [fetch("https://example.com"), fetch("https://example.com")]

        assert fetch_twice() == ["data from https://example.com"] * 2
        assert len(attempts) == 2

    def test_subflow(self):
        """A flow calling another flow gets its return value."""

        @flow
        def child(n: int) -> int:
            return n + 1

        @flow
        def parent() -> int:
            return child(1) + child(2)

        assert parent() == 5
