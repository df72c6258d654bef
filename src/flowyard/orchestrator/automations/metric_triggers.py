"""Metric triggers (placeholder until the metrics work lands)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from flowyard.automation_schemas import MetricTrigger


@dataclass(frozen=True)
class MetricChange:
    state: Literal["triggered", "resolved"]
    resource: dict[str, str]
    value: float


def evaluate(
    session: Session, automation_id: str, path: str, trigger: MetricTrigger, now: datetime
) -> list[MetricChange]:
    return []
