"""Prefect 3 docs, concurrency: "How to run work concurrently" and the "Task runners"
concept page. Each example is the doc's code with ``prefect`` → ``flowyard`` in imports;
where the doc sleeps ``floor`` seconds, the task waits ``floor`` milliseconds (an
``Event().wait``, as ``time.sleep`` is banned from tests) and records what it does.
"""

from __future__ import annotations

import asyncio
import threading

from flowyard import flow, task
from flowyard.futures import wait
from flowyard.task_runners import ConcurrentTaskRunner, ThreadPoolTaskRunner


def short_pause(floor: int) -> None:
    """The doc's ``time.sleep(floor)``, a thousand times shorter."""
    threading.Event().wait(floor / 1000)  # noqa: TID251 - the doc's task's work


class Elevator:
    """Counts how many stop_at_floor runs are in progress at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.stops: list[int] = []

    def enter(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)

    def leave(self, floor: int) -> None:
        with self.lock:
            self.running -= 1
            self.stops.append(floor)


class TestRunWorkConcurrently:
    def test_submit_and_wait(self, capsys):
        """Ten submitted runs all finish before wait() returns; they overlap."""
        elevator = Elevator()

        @task
        def stop_at_floor(floor: int):
            elevator.enter()
            print(f"elevator moving to floor {floor}")
            short_pause(floor)
            print(f"elevator stops on floor {floor}")
            elevator.leave(floor)

        @flow
        def elevator_flow():
            floors = []
            for floor in range(10, 0, -1):
                floors.append(stop_at_floor.submit(floor))
            wait(floors)
            assert all(f.state.is_completed() for f in floors)

        elevator_flow()
        assert sorted(elevator.stops) == list(range(1, 11))
        assert "elevator stops on floor 10" in capsys.readouterr().out

    def test_future_result(self, capsys):
        """future.result() gives the task's return value."""

        @task
        def cool_task():
            return "sup"

        @flow
        def my_workflow():
            future = cool_task.submit()
            result = future.result()
            print(result)

        my_workflow()
        assert capsys.readouterr().out == "sup\n"

    def test_future_wait(self):
        """future.wait() waits; the state is then Completed."""

        @task
        def cool_task():
            return "sup"

        states = []

        @flow
        def my_workflow():
            future = cool_task.submit()
            future.wait()
            states.append(future.state)

        my_workflow()
        assert states[0].is_completed() and states[0].result() == "sup"

    def test_wait_for_many_futures(self):
        """wait(futures) returns once all ten are done."""

        @task
        def cool_task():
            return "sup"

        done = []

        @flow
        def my_workflow():
            futures = [cool_task.submit() for _ in range(10)]
            outcome = wait(futures)
            done.append((len(outcome.done), len(outcome.not_done)))

        my_workflow()
        assert done == [(10, 0)]

    def test_passing_futures_between_tasks(self, capsys):
        """A future passed to a task arrives as its value."""

        @task
        def cool_task():
            return "sup"

        @task
        def what_did_cool_task_say(what_it_said: str):
            return f"cool task said {what_it_said}"

        @flow
        def my_workflow():
            future = cool_task.submit()
            print(what_did_cool_task_say(future))

        my_workflow()
        assert capsys.readouterr().out == "cool task said sup\n"

    def test_map(self):
        """map() submits one run per floor."""
        elevator = Elevator()

        @task
        def stop_at_floor(floor: int):
            elevator.enter()
            print(f"elevator moving to floor {floor}")
            short_pause(floor)
            print(f"elevator stops on floor {floor}")
            elevator.leave(floor)

        @flow
        def elevator_flow():
            floors = list(range(10, 0, -1))
            floors = stop_at_floor.map(floors)
            wait(floors)

        elevator_flow()
        assert sorted(elevator.stops) == list(range(1, 11))

    def test_async_tasks_with_asyncio_gather(self, capsys):
        """Async tasks awaited together in an async flow; the short floors stop first."""

        @task
        async def stop_at_floor(floor: int):
            print(f"elevator moving to floor {floor}")
            await asyncio.sleep(floor / 100)  # noqa: TID251 - the doc's task sleeps ``floor`` s
            print(f"elevator stops on floor {floor}")

        @flow
        async def elevator():
            floors = list(range(10, 0, -1))
            await asyncio.gather(*[stop_at_floor(floor) for floor in floors])

        asyncio.run(elevator())
        stops = [line for line in capsys.readouterr().out.splitlines() if "stops" in line]
        assert stops[0] == "elevator stops on floor 1"
        assert stops[-1] == "elevator stops on floor 10"


class TestTaskRunners:
    def test_thread_pool_task_runner_max_workers(self):
        """ThreadPoolTaskRunner(max_workers=3) runs at most three task runs at once."""
        elevator = Elevator()

        @task
        def stop_at_floor(floor):
            elevator.enter()
            print(f"elevator moving to floor {floor}")
            short_pause(floor)
            print(f"elevator stops on floor {floor}")
            elevator.leave(floor)

        @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
        def elevator_flow():
            floors = []

            for floor in range(10, 0, -1):
                floors.append(stop_at_floor.submit(floor))

            wait(floors)  # wait for the sequence of futures to complete

        elevator_flow()
        assert len(elevator.stops) == 10 and 1 <= elevator.most <= 3

    def test_concurrent_task_runner_is_the_thread_pool(self):
        """Prefect 2's ConcurrentTaskRunner name still works."""

        @task
        def double(x: int) -> int:
            return 2 * x

        @flow(task_runner=ConcurrentTaskRunner())
        def doubles() -> list[int]:
            return double.map([1, 2, 3]).result()

        assert doubles() == [2, 4, 6]

    def test_futures_are_resolved_for_downstream_tasks(self, capsys):
        """print_result receives the string, not the future."""

        @task
        def say_hello(name):
            return f"Hello {name}!"

        @task
        def print_result(result):
            print(type(result))
            print(result)

        @flow(name="hello-flow")
        def hello_world():
            future = say_hello.submit("Marvin")
            print_result.submit(future).wait()

        hello_world()
        assert capsys.readouterr().out == "<class 'str'>\nHello Marvin!\n"

    def test_result_of_a_submitted_task(self, capsys):
        """future.result() prints 42."""

        @task
        def my_task():
            return 42

        @flow
        def my_flow():
            future = my_task.submit()
            result = future.result()
            print(result)

        my_flow()
        assert capsys.readouterr().out == "42\n"

    def test_result_without_raising(self):
        """result(raise_on_failure=False) with state checks, for a success and a failure."""
        seen = []

        @task
        def my_task():
            return "I'm a task!"

        @flow
        def my_flow():
            future = my_task.submit()
            result = future.result(raise_on_failure=False)
            if future.state.is_failed():
                # `result` is an exception! handle accordingly
                seen.append(("failed", result))
            else:
                # `result` is the expected return value of our task
                seen.append(("ok", result))

        my_flow()

        @task
        def my_failing_task():
            raise RuntimeError("no")

        my_task = my_failing_task  # noqa: F811 - the flow looks the name up at call time
        my_flow()
        assert seen[0] == ("ok", "I'm a task!")
        assert seen[1][0] == "failed" and isinstance(seen[1][1], RuntimeError)
