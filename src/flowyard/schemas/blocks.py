"""Block types and block documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import (
    Field,
)

from flowyard.schemas.base import Doc, JsonObject, Kind, StoredJson

BLOCK_NAME = r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,99}$"


class BlockType(Doc):
    slug: str
    name: str
    description: str | None
    secret_fields: list[str]
    fields_schema: dict[str, Any]


class BlockCreate(Doc):
    type: Kind
    name: str = Field(pattern=BLOCK_NAME)
    data: JsonObject = Field(default_factory=dict)


class BlockSave(Doc):
    """The body of ``PUT /api/blocks/{type}/{name}``: create or replace."""

    data: JsonObject = Field(default_factory=dict)


class BlockDocument(Doc):
    """A block as the API returns it: secrets masked unless asked for explicitly."""

    id: str
    type: str
    name: str
    data: StoredJson
    secret_fields: list[str]
    created: datetime
    updated: datetime

    @property
    def ref(self) -> str:
        return f"{self.type}/{self.name}"
