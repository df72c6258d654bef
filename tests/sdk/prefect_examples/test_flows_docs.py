"""Prefect 3 docs, flows: "How to write and run a workflow", "How to pass inputs to a
workflow", the "Flows" concept page, "Runtime context" and "How to access runtime
information". Each example is the doc's code with ``prefect`` → ``flowyard`` in imports.
"""

import inspect
import random

import pytest

from flowyard import flow, runtime, task
from flowyard.errors import InvalidInput
from flowyard.runtime import flow_run
from flowyard.states import Completed, Failed


class TestWriteAndRun:
    def test_hello_world_workflow(self):
        """A flow is called like a function and returns its value."""

        @flow
        def my_workflow() -> str:
            return "Hello, world!"

        assert my_workflow() == "Hello, world!"

    def test_flows_from_instance_class_and_static_methods(self):
        """@flow works on instance methods, class methods and static methods."""

        class MyClass:
            @flow
            def my_instance_method(self):
                return "Hello, from an instance method!"

            @flow
            @classmethod
            def my_class_method(cls):
                return "Hello, from a class method!"

            @flow
            @staticmethod
            def my_static_method():
                return "Hello, from a static method!"

        assert MyClass().my_instance_method() == "Hello, from an instance method!"
        assert MyClass.my_class_method() == "Hello, from a class method!"
        assert MyClass.my_static_method() == "Hello, from a static method!"

    def test_generator_flow(self, capsys):
        """A generator flow is iterated by its caller."""

        @flow
        def generator():
            for i in range(10):  # noqa: UP028 - as in the doc
                yield i

        for val in generator():
            print(val)

        assert capsys.readouterr().out.split() == [str(i) for i in range(10)]

    def test_tasks_and_child_flows(self, capsys):
        """A flow calls a task and a child flow (the doc's snippet misses ``import random``)."""

        @task
        def generate_a_number():
            return random.randint(0, 100)

        @flow
        def is_number_even(number: int):
            return number % 2 == 0

        @flow
        def even_or_odd():
            number = generate_a_number()
            if is_number_even(number):
                print("The number is even")
            else:
                print("The number is odd")

        random.seed(7)
        expected = "even" if random.randint(0, 100) % 2 == 0 else "odd"
        random.seed(7)
        even_or_odd()
        assert f"The number is {expected}" in capsys.readouterr().out


class TestPassInputs:
    def test_keyword_input(self):
        """Parameters are passed as arguments to the call."""

        @flow
        def my_workflow(name: str = "World"):
            return f"Hello, {name}!"

        assert my_workflow(name="Marvin") == "Hello, Marvin!"

    def test_a_wrong_type_fails_validation(self):
        """name=1 for a str parameter fails with an error naming the parameter."""

        @flow
        def my_workflow(name: str = "World"):
            return f"Hello, {name}!"

        with pytest.raises(InvalidInput, match="'name'"):
            my_workflow(name=1)

    def test_validation_switched_off(self):
        """With validate_parameters=False the value reaches the flow as given."""

        @flow(validate_parameters=False)
        def my_workflow(name: str = "World"):
            return f"Hello, {name}!"

        assert my_workflow(name=1) == "Hello, 1!"

    def test_pydantic_model_parameters_are_validated(self):
        """A BaseModel parameter is built from a dict; a bad field is named in the error."""
        from pydantic import BaseModel

        class Model(BaseModel):
            a: int
            b: str

        @flow
        def flow_that_validates_parameters(model: Model): ...

        with pytest.raises(InvalidInput, match=r"'model\.a'"):
            flow_that_validates_parameters(model={"a": "WRONG", "b": "fine"})

        seen: list[object] = []

        @flow
        def keeps_the_model(model: Model):
            seen.append(model)

        keeps_the_model(model={"a": "3", "b": "fine"})
        assert seen == [Model(a=3, b="fine")]


class TestFlowsConcept:
    def test_log_prints_flow(self, capsys):
        """print() inside a log_prints flow goes to the run logger."""

        @flow(log_prints=True)
        def explain_flows():
            print("run any python code here!")
            print("encapsulate that business logic!")

        explain_flows()
        err = capsys.readouterr().err
        assert "run any python code here!" in err and "encapsulate that business logic!" in err

    def test_calling_a_flow_creates_a_run(self, capsys):
        """Without log_prints, print() still prints to stdout."""

        @flow
        def beep():
            print("boop")

        state = beep(return_state=True)
        assert state.is_completed() and capsys.readouterr().out == "boop\n"

    def test_signature_is_the_function_signature(self):
        """inspect.signature of a flow is its function's."""

        @flow
        def schleeb(x: int, y: str, z: bool | None = None):
            print(f"x: {x}, y: {y}, z: {z}")

        assert str(inspect.signature(schleeb)) == "(x: int, y: str, z: bool | None = None)"

    def test_a_returned_generator_is_consumed(self, capsys):
        """A generator returned by a flow is consumed into a list."""

        def gen():
            yield from [1, 2, 3]
            print("Generator consumed!")

        @flow
        def f():
            return gen()

        assert f() == [1, 2, 3]
        assert "Generator consumed!" in capsys.readouterr().out

    def test_a_yielded_generator_is_not_consumed(self, capsys):
        """A generator yielded by a generator flow is handed over as it is."""

        def gen():
            yield from [1, 2, 3]
            print("Generator consumed!")

        @flow
        def f():
            yield gen()

        generator = next(f())
        assert "Generator consumed!" not in capsys.readouterr().out
        assert list(generator) == [1, 2, 3]
        assert "Generator consumed!" in capsys.readouterr().out

    def test_returning_the_future_of_a_successful_task(self):
        """A flow returning a completed task's future completes, despite an earlier failure;
        its result is the task's state, as in Prefect 3.9.1."""

        @task
        def always_fails_task():
            raise ValueError("I fail successfully")

        @task
        def always_succeeds_task():
            print("I'm fail safe!")
            return "success"

        @flow
        def always_succeeds_flow():
            x = always_fails_task.submit().result(raise_on_failure=False)
            y = always_succeeds_task.submit(wait_for=[x])
            return y

        state = always_succeeds_flow(return_state=True)
        assert state.is_completed() and state.message == "All states completed."
        assert state.result().is_completed() and state.result().result() == "success"

    def test_returning_several_results_with_a_failure(self):
        """A flow whose task fails ends Failed with the task's exception."""

        @task
        def always_fails_task():
            raise ValueError("I am bad task")

        @task
        def always_succeeds_task():
            return "foo"

        @flow
        def always_succeeds_flow():
            return "bar"

        @flow
        def always_fails_flow():
            x = always_fails_task()
            y = always_succeeds_task()
            z = always_succeeds_flow()
            return x, y, z

        state = always_fails_flow(return_state=True)
        assert state.is_failed()
        with pytest.raises(ValueError, match="I am bad task"):
            state.result()

    def test_returning_a_manual_state(self):
        """The state a flow returns is its final state."""

        @task
        def always_fails_task():
            raise ValueError("I fail successfully")

        @task
        def always_succeeds_task():
            print("I'm fail safe!")
            return "success"

        @flow
        def always_succeeds_flow():
            x = always_fails_task.submit()  # noqa: F841 - as in the doc
            y = always_succeeds_task.submit()
            if y.result() == "success":
                return Completed(message="I am happy with this result")
            else:
                return Failed(message="How did this happen!?")

        state = always_succeeds_flow(return_state=True)
        assert state.is_completed() and state.message == "I am happy with this result"

    def test_custom_named_state(self):
        """A flow may end in a Completed state named Skipped."""

        @flow
        def my_flow(work_to_do: bool):
            if not work_to_do:
                return Completed(message="No work to do 💤", name="Skipped")
            else:
                return Completed(message="Work was done 💪")

        skipped = my_flow(work_to_do=False, return_state=True)
        assert (skipped.name, skipped.type.value) == ("Skipped", "COMPLETED")
        assert my_flow(work_to_do=True, return_state=True).name == "Completed"


class TestRuntime:
    def test_runtime_information(self, capsys):
        """runtime.flow_run/task_run/deployment inside a flow and its task."""

        @flow(log_prints=True)
        def my_flow(x):
            print("My name is", runtime.flow_run.name)
            print("I belong to deployment", runtime.deployment.name)
            my_task(2)

        @task
        def my_task(y):
            print("My name is", runtime.task_run.name)
            print("Flow run parameters:", runtime.flow_run.parameters)

        my_flow(1)
        err = capsys.readouterr().err
        assert "I belong to deployment None" in err
        assert "My name is my_task-0" in err
        assert "Flow run parameters: {'x': 1}" in err

    def test_moody_workflow(self):
        """flow_run.name is the run's name inside a run and None outside."""

        @flow
        def moody_workflow(name: str):
            return f"I wish my parents had named me {name} instead of {flow_run.name}."

        assert flow_run.name is None
        said = moody_workflow("Marvin")
        assert said.startswith("I wish my parents had named me Marvin instead of ")
        assert not said.endswith("None.")
