"""``--param KEY=VALUE`` read by the parameter's schema: text stays text, the rest is JSON."""

from __future__ import annotations

import click
import pytest

from flowyard.cli.parameters import parse_parameters
from flowyard.errors import InvalidInput
from flowyard.orchestrator.parameters import check_parameters
from flowyard.sdk.parameters import parameter_schema


def greet(
    label: str,
    n: int = 1,
    ratio: float = 0.5,
    flag: bool = False,
    note: str | None = None,
    either: int | str = 0,
    ids: list[int] | None = None,
    opts: dict | None = None,
    anything=None,
) -> None: ...


SCHEMA = parameter_schema(greet)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("label=123", "123"),
        ("label=true", "true"),
        ('label="quoted"', '"quoted"'),
        ("note=null", "null"),
        ("n=3", 3),
        ("ratio=2", 2),
        ("flag=true", True),
        ("either=7", 7),
        ("either=seven", "seven"),
        ("either=true", "true"),
        ("ids=[1,2]", [1, 2]),
        ('opts={"a":1}', {"a": 1}),
        ("anything=[1]", [1]),
        ("anything=plain words", "plain words"),
        ("n=three", "three"),  # not JSON: kept, and the server says what is wrong
    ],
)
def test_each_value_is_read_by_its_parameter_type(item, expected):
    """A text parameter keeps the text as typed; other types read the value as JSON."""
    key = item.partition("=")[0]
    assert parse_parameters([item], SCHEMA) == {key: expected}


def test_without_a_schema_values_are_json_when_they_parse():
    """No schema (or a name it does not know): JSON when it parses, text otherwise."""
    assert parse_parameters(["a=1", "b=x", "c=true"], None) == {"a": 1, "b": "x", "c": True}
    assert parse_parameters(["other=1"], SCHEMA) == {"other": 1}


def test_a_reference_to_a_text_enum_keeps_the_text():
    """An enum parameter (a $ref to a string enum) keeps ``1`` as the text "1"."""
    schema = {
        "properties": {"color": {"$ref": "#/$defs/Color"}},
        "$defs": {"Color": {"enum": ["1", "2"], "type": "string"}},
    }
    assert parse_parameters(["color=1"], schema) == {"color": "1"}


def test_an_item_without_equals_is_refused():
    with pytest.raises(click.BadParameter, match="is not KEY=VALUE"):
        parse_parameters(["label"], SCHEMA)


def test_type_errors_spell_values_as_json():
    """The server's message shows ``true``, not Python's ``True``."""
    with pytest.raises(InvalidInput) as info:
        check_parameters(SCHEMA, {"label": "x", "n": True})
    assert str(info.value) == "parameter 'n': true is not of type 'integer'"
