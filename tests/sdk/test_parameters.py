"""Parameter schemas and validation through pydantic."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import BaseModel

from flowyard.errors import InvalidInput
from flowyard.sdk import parameter_schema, validate_parameters


class Window(BaseModel):
    start: date
    days: int = 1


def etl(n: int, label: str = "daily", anything=None, window: Window | None = None) -> None:
    return None


class TestParameterSchema:
    def test_properties_required_defaults_and_types(self):
        """Types come from hints, defaults from the signature, required from missing defaults."""
        schema = parameter_schema(etl)
        props = schema["properties"]
        assert schema["type"] == "object" and schema["required"] == ["n"]
        assert props["n"]["type"] == "integer"
        assert props["label"] == {"type": "string", "default": "daily", "title": "label",
                                  "position": 1}  # fmt: skip
        assert "$defs" in schema and "Window" in schema["$defs"]

    def test_unannotated_parameters_accept_anything(self):
        """An unannotated parameter has no type constraint."""
        prop = parameter_schema(etl)["properties"]["anything"]
        assert "type" not in prop and "anyOf" not in prop

    def test_names_clashing_with_pydantic_are_fine(self):
        """Parameters named like BaseModel attributes (json, schema) keep their names."""

        def f(json: int, schema: str = "s", model_config: int = 0) -> None:
            return None

        assert list(parameter_schema(f)["properties"]) == ["json", "schema", "model_config"]
        assert validate_parameters(f, {"json": "1"}) == {
            "json": 1,
            "schema": "s",
            "model_config": 0,
        }


class TestValidateParameters:
    def test_coerces_and_fills_defaults(self):
        """Values are coerced to their hints; defaults fill the gaps."""
        values = validate_parameters(etl, {"n": "3", "window": {"start": "2024-01-02"}})
        assert values == {"n": 3, "label": "daily", "anything": None,
                          "window": Window(start=date(2024, 1, 2))}  # fmt: skip

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            ({"n": "x"}, "parameter 'n': Input should be a valid integer"),
            ({}, "parameter 'n': missing (required)"),
            ({"n": 1, "extra": 2}, "parameter 'extra': unknown parameter"),
            ({"n": 1, "window": {"start": "soon"}}, "parameter 'window.start': Input should be"),
        ],
    )
    def test_bad_input_names_the_parameter(self, params, message):
        """Wrong, missing or unknown parameters raise InvalidInput with a one-line message."""
        with pytest.raises(InvalidInput) as info:
            validate_parameters(etl, params)
        assert str(info.value).startswith(message)
        assert "\n" not in str(info.value)

    def test_kwargs_accept_extra_parameters(self):
        """A flow taking **kwargs accepts parameters it does not name."""

        def f(n: int, **rest: object) -> None:
            return None

        assert validate_parameters(f, {"n": 1, "other": "x"}) == {"n": 1, "other": "x"}
