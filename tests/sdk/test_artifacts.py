"""Artifacts without a server: the bounds every artifact is held to, and what the SDK
does when no API is configured (checks the artifact, records nothing, returns an id)."""

from __future__ import annotations

import asyncio
import math
from uuid import UUID

import pytest
from pydantic import ValidationError

from flowyard import artifacts as fa
from flowyard import flow, task
from flowyard.schemas import artifacts as a
from flowyard.sdk import artifacts as sdk_artifacts


def _nested(levels: int) -> list[object]:
    data: list[object] = []
    for _ in range(levels):
        data = [data]
    return data


class TestBounds:
    def test_each_type_accepts_its_own_data(self):
        """Markdown text, tables in Prefect's three shapes, 0-100 progress, http(s) images."""
        for kind, data in [
            ("markdown", "# hi"),
            ("table", [{"a": 1}, {"a": 2}]),
            ("table", [[1, 2], [3, 4]]),
            ("table", {"a": [1, 2], "b": [3, 4]}),
            ("progress", 0),
            ("progress", 99.5),
            ("image", "https://example.com/x.png"),
        ]:
            assert a.ArtifactCreate(type=kind, data=data).data == data

    @pytest.mark.parametrize(
        ("fields", "message"),
        [
            ({"type": "markdown", "data": "x", "key": "Bad Key"}, "is not an artifact key"),
            ({"type": "markdown", "data": "x", "key": "-starts-with-dash"}, "not an artifact key"),
            ({"type": "markdown", "data": "x", "key": "k" * 101}, "not an artifact key"),
            ({"type": "markdown", "data": 3}, "markdown artifact's data is a string"),
            ({"type": "table", "data": [[0]] * 10_001}, "10001 rows; at most 10000"),
            ({"type": "table", "data": [list(range(201))]}, "201 columns; at most 200"),
            ({"type": "table", "data": {"a": 1}}, "maps each column name to a list"),
            ({"type": "table", "data": [_nested(300)]}, "nests more than 20 levels"),
            ({"type": "table", "data": [[math.inf]]}, "NaN or an infinity"),
            ({"type": "progress", "data": 101}, "number from 0 to 100"),
            ({"type": "progress", "data": True}, "number from 0 to 100"),
            ({"type": "image", "data": "javascript:alert(1)"}, r"http\(s\) URL"),
            ({"type": "markdown", "data": "x" * 1_000_001}, "at most 1000000"),
            ({"type": "markdown", "data": "x", "description": "d" * 5_001}, "at most 5000"),
            ({"type": "html", "data": "x"}, "type"),
        ],
    )
    def test_out_of_bounds_input_is_refused_naming_the_problem(self, fields, message):
        """Each bound refuses with a message that says which bound and by how much."""
        with pytest.raises(ValidationError, match=message):
            a.ArtifactCreate(**fields)


@task
def in_a_task() -> UUID:
    return fa.create_table_artifact({"n": [1.0, float("nan")]}, key="local-table")


@flow
def local_flow() -> list[UUID]:
    progress = fa.create_progress_artifact(10, key="local-progress")
    return [
        fa.create_markdown_artifact("# local", key="local-report"),
        fa.create_link_artifact("https://example.com", link_text="example"),
        fa.create_image_artifact("https://example.com/x.png"),
        in_a_task(),
        progress,
        fa.update_progress_artifact(progress, 50),
    ]


class TestWithoutAnApi:
    def test_artifacts_of_a_local_run_return_ids_and_record_nothing(self, monkeypatch):
        """With no FLOWYARD_API_URL every call returns an id and contacts no server; an
        update returns the id it was given."""
        monkeypatch.delenv("FLOWYARD_API_URL", raising=False)
        ids = local_flow()
        assert all(isinstance(i, UUID) for i in ids)
        assert len(set(ids)) == 5 and ids[-1] == ids[-2]

    def test_a_local_run_still_checks_the_artifact(self, monkeypatch):
        """A bad key fails locally as it would deployed, so no surprise awaits in production."""
        monkeypatch.delenv("FLOWYARD_API_URL", raising=False)

        @flow
        def bad() -> None:
            fa.create_markdown_artifact("x", key="Not_A_Key")

        with pytest.raises(ValidationError, match="is not an artifact key"):
            bad()

    def test_progress_is_clamped_and_nan_cells_become_null(self):
        """As Prefect: progress outside 0-100 is clamped; NaN in a table is null."""
        assert sdk_artifacts._clamped(140) == 100.0 and sdk_artifacts._clamped(-3) == 0.0
        assert sdk_artifacts._without_nan({"a": [1.0, math.nan]}) == {"a": [1.0, None]}

    def test_the_async_forms_work_too(self, monkeypatch):
        """``acreate_markdown_artifact`` and friends return ids as the sync forms do."""
        monkeypatch.delenv("FLOWYARD_API_URL", raising=False)
        created = asyncio.run(fa.acreate_markdown_artifact("# async"))
        assert asyncio.run(fa.aupdate_progress_artifact(created, 5)) == created
