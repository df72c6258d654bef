"""Work pools and their queues."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import (
    Field,
    StrictInt,
)

from flowyard.schemas.base import Bool, Count, Doc, JsonObject, Kind, Name, Text


class WorkPoolCreate(Doc):
    name: Name
    type: Kind = "process"
    description: Text | None = None
    concurrency_limit: Count | None = None
    paused: Bool = False
    base_job_template: JsonObject | None = None


class WorkPoolUpdate(Doc):
    description: Text | None = None
    concurrency_limit: Count | None = None
    clear_concurrency_limit: Bool = False
    paused: Bool | None = None
    base_job_template: JsonObject | None = None


class WorkPool(Doc):
    id: str
    name: str
    type: str
    description: str | None
    concurrency_limit: int | None
    paused: bool
    base_job_template: dict[str, Any]
    status: str = "NOT_READY"
    created: datetime


FAIR_DESCRIPTION = "deployments take turns, so that one's burst does not starve another's runs"
MIN_RUN_PRIORITY, MAX_RUN_PRIORITY = -1000, 1000  # the claim script has bands for ±4096
MAX_QUEUE_PRIORITY = 1_000_000


class WorkQueueCreate(Doc):
    name: Name
    priority: StrictInt = Field(default=1, ge=0, le=MAX_QUEUE_PRIORITY)
    concurrency_limit: Count | None = None
    paused: Bool = False
    fair: Bool = Field(default=False, description=FAIR_DESCRIPTION)
    description: Text | None = None


class WorkQueueUpdate(Doc):
    priority: StrictInt | None = Field(default=None, ge=0, le=MAX_QUEUE_PRIORITY)
    concurrency_limit: Count | None = None
    clear_concurrency_limit: Bool = False
    paused: Bool | None = None
    fair: Bool | None = Field(default=None, description=FAIR_DESCRIPTION)
    description: Text | None = None


class WorkQueue(Doc):
    id: str
    pool_name: str
    name: str
    priority: int
    concurrency_limit: int | None
    paused: bool
    fair: bool = False
    description: str | None = None
    ready: int = 0
    running: int = 0
