"""API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import (
    Field,
)

from flowyard.schemas.base import MAX_LIST_ITEMS, Doc, Name


class ApiKeyCreate(Doc):
    name: Name
    role: Literal["admin", "viewer", "worker"] = "worker"
    pools: list[Name] = Field(
        default_factory=list,
        max_length=MAX_LIST_ITEMS,
        description="worker keys: pools it may serve",
    )


class ApiKey(Doc):
    name: str
    role: str
    pools: list[str]
    prefix: str
    created: datetime
    revoked: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="the secret, shown this once")
    enforced: bool = Field(
        default=True,
        description="false: the server requires no key (no FLOWYARD_API_KEY), so keys are "
        "not checked until it does",
    )
