"""Which upstream task runs fed an input: futures, states and results, inside containers."""

from __future__ import annotations

import concurrent.futures as cf

from flowyard.sdk.annotations import allow_failure, quote, unmapped
from flowyard.sdk.futures import TaskFuture
from flowyard.sdk.task_inputs import RunLinks, call_inputs
from flowyard.states import Completed, Failed


def ids(inputs: list[dict[str, str]]) -> list[str]:
    return [i["id"] for i in inputs]


def done_future(name: str, state, task_run_id: str) -> TaskFuture:
    inner: cf.Future = cf.Future()
    inner.set_result(state)
    return TaskFuture(inner, name, task_run_id)


class TestRunLinks:
    def test_results_are_found_by_identity_inside_containers(self):
        """A returned object passed on inside a list, tuple, set or dict links to its run."""
        links = RunLinks()
        rows, total = ["r1", "r2"], 10_000
        links.produced("tr-a", Completed(data=rows))
        links.produced("tr-b", Completed(data=total))
        found = links.inputs({"x": [rows], "y": ({"k": total},), "z": [[1, 2]]}, None)
        assert {k: ids(v) for k, v in found.items()} == {"x": ["tr-a"], "y": ["tr-b"], "z": []}

    def test_an_equal_but_different_object_is_not_linked(self):
        """Identity, not equality: a copy of a result is not that result."""
        links = RunLinks()
        rows = [{"k": 1}]
        links.produced("tr-a", Completed(data=rows))
        assert ids(links.inputs({"x": [dict(rows[0])]}, None)["x"]) == []

    def test_shared_values_are_never_linked(self):
        """None, booleans and small integers are the same object everywhere."""
        links = RunLinks()
        links.produced("tr-a", Completed(data=7))
        links.produced("tr-b", Completed(data=None))
        assert links.inputs({"x": 7, "y": None}, None) == {"x": [], "y": []}

    def test_futures_link_by_their_task_run_id_done_or_not(self):
        """A future carries its task run's id from the call on, before the run starts."""
        links = RunLinks()
        pending = TaskFuture(cf.Future(), "t-0", "tr-0")
        state = Failed(data=ValueError())
        links.produced("tr-1", state)
        done = done_future("t-1", state, "tr-1")
        found = links.inputs({"x": pending, "y": allow_failure(done)}, [done])
        assert {k: ids(v) for k, v in found.items()} == {
            "x": ["tr-0"], "y": ["tr-1"], "wait_for": ["tr-1"],
        }  # fmt: skip

    def test_states_link_and_quote_hides_its_contents(self):
        """A passed state links to its run; unmapped is looked through, quote is not."""
        links = RunLinks()
        state = Completed(data="value")
        links.produced("tr-s", state)
        found = links.inputs({"a": unmapped(state), "b": quote(state), "c": (state,)}, None)
        assert {k: ids(v) for k, v in found.items()} == {"a": ["tr-s"], "b": [], "c": ["tr-s"]}

    def test_a_subflow_call_is_bound_to_its_parameters(self):
        """call_inputs names inputs by parameter, defaults included; a bad call gives {}."""
        import inspect

        links = RunLinks()
        rows = ["r"]
        links.produced("tr-a", Completed(data=rows))

        def child(data, scale=2): ...

        signature = inspect.signature(child)
        assert call_inputs(links, signature, (rows,), {}) == {
            "data": [{"input_type": "task_run", "id": "tr-a"}]
        }
        assert call_inputs(links, signature, (), {"nope": 1}) == {}

    def test_items_of_a_result_link_to_it_unless_they_came_from_elsewhere(self):
        """Mapping over a result links each item to its run; an item passed through keeps
        the run it came from."""
        links = RunLinks()
        earlier, fresh = ["from b"], ["new"]
        links.produced("tr-b", Completed(data=earlier))
        links.produced("tr-a", Completed(data=[earlier, fresh]))
        found = links.inputs({"x": earlier, "y": fresh}, None)
        assert {k: ids(v) for k, v in found.items()} == {"x": ["tr-b"], "y": ["tr-a"]}
