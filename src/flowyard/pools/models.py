"""The values :class:`~flowyard.pools.queue.PoolQueues` takes and returns, and their Redis forms.

Pure: a queue's configuration as config-hash fields, a pool's layout read back from that
hash, a claim as the claim script answers it and as its record is stored. Nothing here
talks to Redis.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowyard.pools import keys

COLLIDED = "!"  # the claim script's token for a run to cancel (deployment limit, cancel-new)


@dataclass(frozen=True)
class QueueConfig:
    """One queue of a pool, as the orchestrator configures it."""

    name: str
    priority: int = 1
    concurrency_limit: int | None = None
    paused: bool = False
    fair: bool = False  # deployments take turns instead of first-come first-served


@dataclass(frozen=True)
class Claim:
    """A run taken by a worker; ``token`` identifies this claim of the run."""

    run_id: str
    queue: str
    token: str
    deployment: str | None = None


@dataclass(frozen=True)
class ClaimResult:
    """The runs claimed, and when the earliest not-yet-due run becomes due (epoch seconds).

    ``collided`` are runs taken out of their queue because their deployment was at its
    concurrency limit with the cancel-new strategy: the caller cancels them.
    """

    claims: list[Claim]
    next_due: float | None
    collided: list[str] = dataclasses.field(default_factory=list)
    replayed: list[tuple[str, str]] | None = None
    """For a claim request sent again: the (run id, claim token) pairs it was given."""


@dataclass(frozen=True)
class Layout:
    """A pool's queue names in claim order, as of config ``version``."""

    version: str
    queues: tuple[str, ...]


def layout_from_config(config: Mapping[str, str]) -> Layout:
    """Order a pool's queues by priority (lower first), then by name."""
    priorities: dict[str, int] = {}
    for field, value in config.items():
        parsed = keys.parse_queue_field(field)
        if parsed and parsed[1] == "priority":
            priorities[parsed[0]] = int(value)
    ordered = sorted(priorities, key=lambda name: (priorities[name], name))
    return Layout(config.get(keys.VERSION, ""), tuple(ordered))


def queue_fields(queue: QueueConfig) -> dict[str, str]:
    """The config-hash fields of one queue (an absent limit means unlimited)."""
    fields = {
        keys.queue_field(queue.name, "priority"): str(queue.priority),
        keys.queue_field(queue.name, "paused"): "1" if queue.paused else "0",
        keys.queue_field(queue.name, "fair"): "1" if queue.fair else "0",
    }
    if queue.concurrency_limit is not None:
        fields[keys.queue_field(queue.name, "limit")] = str(checked_limit(queue.concurrency_limit))
    return fields


def checked_limit(value: int) -> int:
    """A concurrency limit, refused when negative."""
    if value < 0:
        raise ValueError("a concurrency limit cannot be negative")
    return value


def text(value: Any) -> str:
    """A Redis reply as ``str`` (a client made without ``decode_responses`` answers bytes)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def claim_result(values: list[str]) -> ClaimResult:
    """Parse the claim script's ``['ok', next_due, run, queue, token, ...]`` or
    ``['replay', answer]`` reply."""
    if values[0] == "replay":
        given = [(run, token) for run, token in json.loads(values[1])]
        return ClaimResult([], None, replayed=given)
    body = values[2:]
    triples = [body[i : i + 3] for i in range(0, len(body), 3)]
    claims = [Claim(*triple) for triple in triples if triple[2] != COLLIDED]
    collided = [run_id for run_id, _, token in triples if token == COLLIDED]
    return ClaimResult(claims, float(values[1]) if values[1] else None, collided)


def claim_record(claim: Claim, worker: str) -> str:
    """The JSON record of a held claim, as the claim script writes it in ``claims``."""
    return json.dumps(
        {
            "queue": claim.queue,
            "token": claim.token,
            "worker": worker,
            "deployment": claim.deployment or "",
        }
    )


def claim_from_record(run_id: str, record: Any) -> Claim:
    """The claim of ``run_id`` read back from its record in ``claims``."""
    data = json.loads(text(record))
    deployment = data.get("deployment") or None
    return Claim(run_id=run_id, queue=data["queue"], token=data["token"], deployment=deployment)
