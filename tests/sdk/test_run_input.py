"""``wait_for_input`` types: the schema a pause sends and what the flow gets back are
Prefect 3.9.1's (``run_input_subclass_from_type``; Prefect's ``tests/input/
test_run_input.py``: test_run_input_from_type_basemodel, test_run_input_from_type_str).
The schemas below are what Prefect 3.9.1 printed for the same types."""

from __future__ import annotations

import pydantic
import pytest

from flowyard.input import RunInput
from flowyard.sdk.run_input import input_model, input_schema, loaded


class Person(pydantic.BaseModel):
    a: int
    b: str = "x"


class Approval(RunInput):
    approved: bool


def test_a_plain_type_is_carried_in_a_value_field_and_given_back_bare():
    assert input_schema(input_model(int)) == {
        "additionalProperties": False,
        "properties": {"value": {"title": "Value", "type": "integer"}},
        "required": ["value"],
        "title": "intAutomaticRunInput",
        "type": "object",
    }
    assert input_schema(input_model(list[str]))["title"] == "listAutomaticRunInput"
    assert loaded(input_model(list[str]), {"value": ["a", "b"]}) == ["a", "b"]


def test_a_pydantic_model_becomes_a_run_input_of_itself():
    model = input_model(Person)
    assert input_schema(model) == {
        "additionalProperties": False,
        "properties": {
            "a": {"title": "A", "type": "integer"},
            "b": {"default": "x", "title": "B", "type": "string"},
        },
        "required": ["a"],
        "title": "PersonRunInput",
        "type": "object",
    }
    person = loaded(model, {"a": 1})
    assert isinstance(person, Person) and isinstance(person, RunInput)
    assert (person.a, person.b) == (1, "x")
    with pytest.raises(pydantic.ValidationError):
        loaded(model, {"a": 1, "c": 2})  # extra fields are refused, as in Prefect


def test_a_run_input_subclass_is_used_as_it_is():
    assert input_model(Approval) is Approval
    assert input_schema(Approval)["required"] == ["approved"]
    assert loaded(Approval, {"approved": True}) == Approval(approved=True)


def test_with_initial_data_gives_defaults_and_a_description_the_pause_sends():
    """Prefect's test_with_initial_data: the fields get the values as defaults, the model
    keeps its name, and the description goes with the pause (the UI shows it)."""
    from flowyard.sdk.pause import _wanted

    model = Approval.with_initial_data(description="Ship **it**?", approved=True)
    assert model.__name__ == "Approval"
    assert model.model_fields["approved"].default is True
    assert loaded(model, {}) == model(approved=True)
    wanted = _wanted(input_model(model))
    assert wanted["description"] == "Ship **it**?"
    assert wanted["input_schema"]["properties"]["approved"]["default"] is True
    assert _wanted(Approval)["description"] is None and _wanted(None)["input_schema"] is None
