"""The API's artifact documents, and the bounds every artifact is held to.

An artifact is a small document a flow run or task run publishes for people: markdown
(links are markdown too, as in Prefect), a table, a progress figure or an image URL.
Its ``data`` is JSON in the API; markdown is stored exactly as given and must be
sanitised by whatever renders it (a web UI), never trusted as HTML.

Every field is bounded, so that a bad or huge artifact is refused with a 422 that names
the field instead of filling the store: ``check_data`` is the one pure rule per type.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

ArtifactType = Literal["markdown", "table", "progress", "image"]

KEY_PATTERN = r"^[a-z0-9][a-z0-9-]{0,99}$"
"""As Prefect's: lowercase letters, digits and dashes (and at most 100 of them)."""
MAX_DESCRIPTION = 5_000
MAX_DATA_BYTES = 1_000_000
"""The JSON of one artifact's data."""
MAX_DEPTH = 20
"""How deeply lists and objects may nest inside ``data``."""
MAX_TABLE_ROWS = 10_000
MAX_TABLE_COLUMNS = 200
MAX_URL = 2_048


class _Doc(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="forbid")


class ArtifactCreate(_Doc):
    type: ArtifactType
    key: str | None = Field(
        default=None,
        description="lowercase letters, digits and dashes; a key keeps its artifacts' history",
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)
    data: Any = None
    flow_run_id: str | None = Field(default=None, max_length=36)
    task_run_id: str | None = Field(default=None, max_length=36)

    @field_validator("key")
    @classmethod
    def _key(cls, key: str | None) -> str | None:
        if key is not None and not re.fullmatch(KEY_PATTERN, key):
            raise ValueError(
                f"{key[:120]!r} is not an artifact key: use lowercase letters, digits and "
                "dashes (at most 100, starting with a letter or digit)"
            )
        return key

    @field_validator("data")
    @classmethod
    def _bounded(cls, data: Any, info: ValidationInfo) -> Any:
        if "type" in info.data:  # else the type itself was refused
            check_data(info.data["type"], data)
        return data


class ArtifactUpdate(_Doc):
    """New data (of the artifact's own type) and a new description, each when given."""

    data: Any = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


class Artifact(_Doc):
    id: str
    key: str | None
    type: str
    description: str | None
    data: Any
    flow_run_id: str | None
    task_run_id: str | None
    created: datetime
    updated: datetime


class ArtifactPage(_Doc):
    artifacts: list[Artifact]
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; null on the last page"
    )


class ArtifactHistory(_Doc):
    """A key's artifacts, newest first: the first one is the key's current artifact."""

    key: str
    latest: Artifact
    versions: list[Artifact]
    next_cursor: str | None = None


# -- the bounds --------------------------------------------------------------------------


def check_data(kind: str, data: Any) -> None:
    """Raise ``ValueError`` (a 422 in the API) naming what is wrong with ``data`` for an
    artifact of type ``kind``."""
    _check_depth(data)
    size = len(json.dumps(data, allow_nan=False))
    if size > MAX_DATA_BYTES:
        raise ValueError(f"data is {size} bytes of JSON; at most {MAX_DATA_BYTES}")
    CHECKS[kind](data)


def _check_depth(data: Any) -> None:
    """Iteratively, so that deep data is refused rather than exhausting the stack."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise ValueError(f"data nests more than {MAX_DEPTH} levels deep")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError("data holds NaN or an infinity, which JSON cannot")


def _markdown(data: Any) -> None:
    if not isinstance(data, str):
        raise ValueError("a markdown artifact's data is a string")


def _progress(data: Any) -> None:
    if isinstance(data, bool) or not isinstance(data, int | float) or not 0 <= data <= 100:
        raise ValueError("a progress artifact's data is a number from 0 to 100")


def _image(data: Any) -> None:
    if not isinstance(data, str) or not data.startswith(("http://", "https://")):
        raise ValueError("an image artifact's data is the http(s) URL of the image")
    if len(data) > MAX_URL:
        raise ValueError(f"an image URL has at most {MAX_URL} characters")


def _table(data: Any) -> None:
    """A list of rows (objects or lists) or an object of columns (lists)."""
    if isinstance(data, dict):
        if not all(isinstance(column, list) for column in data.values()):
            raise ValueError("a table given as an object maps each column name to a list")
        columns, rows = len(data), max((len(column) for column in data.values()), default=0)
    elif isinstance(data, list):
        if not all(isinstance(row, dict | list) for row in data):
            raise ValueError("a table given as a list holds rows: objects or lists")
        rows, columns = len(data), max((len(row) for row in data), default=0)
    else:
        raise ValueError("a table artifact's data is a list of rows or an object of columns")
    if rows > MAX_TABLE_ROWS:
        raise ValueError(f"the table has {rows} rows; at most {MAX_TABLE_ROWS}")
    if columns > MAX_TABLE_COLUMNS:
        raise ValueError(f"the table has {columns} columns; at most {MAX_TABLE_COLUMNS}")


CHECKS = {"markdown": _markdown, "table": _table, "progress": _progress, "image": _image}
