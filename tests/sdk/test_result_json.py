"""A small JSON result travels with its reference (``ResultRef.value_json``) for people to
see; a pickled or large one never does, and the API refuses what is not small JSON."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from flowyard import schemas as s
from flowyard.schemas.task_runs import MAX_RESULT_JSON
from flowyard.sdk import result_refs
from flowyard.sdk.result_refs import reference
from flowyard.sdk.results import DefaultSerializer, LocalFileSystem, ResultStore

KEY = b"k" * 32


def _ref(tmp_path: Path, value: object) -> dict[str, object]:
    store = ResultStore(LocalFileSystem(tmp_path), DefaultSerializer(), signing_key=KEY)
    return reference(store, store.write("r", value, expiration=None, owner="test"))


def test_the_sdk_bounds_the_json_it_sends_as_the_api_does():
    """The SDK's bound is the API's (kept apart so that the SDK need not load pydantic)."""
    assert result_refs.MAX_RESULT_JSON == MAX_RESULT_JSON


def test_a_small_json_result_carries_its_text_and_the_api_takes_it(tmp_path):
    """The JSON text of a plain value is in the reference, and the API's document reads it."""
    ref = _ref(tmp_path, {"answer": 42, "note": "<b>"})
    assert ref["serializer"] == "json" and ref["value_json"] == '{"answer": 42, "note": "<b>"}'
    assert s.ResultRef.model_validate(ref).value_json == ref["value_json"]


@pytest.mark.parametrize("value", [{1, 2}, "x" * MAX_RESULT_JSON])
def test_a_pickled_or_large_result_carries_only_its_reference(tmp_path, value):
    """A pickled value, or JSON longer than the bound, is not in the reference."""
    assert "value_json" not in _ref(tmp_path, value)


@pytest.mark.parametrize("text", ["x" * (MAX_RESULT_JSON + 1), "{not json", '"a\x00"', 5])
def test_the_api_refuses_value_json_that_is_not_small_storable_json(text):
    """Too long, not JSON, a NUL, or not text: a validation error naming value_json."""
    ref = {"storage": {}, "key": "k", "location": "/x", "serializer": "json", "value_json": text}
    with pytest.raises(ValidationError, match="value_json"):
        s.ResultRef.model_validate(ref)
