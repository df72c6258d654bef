"""Single run creates of concurrent requests, written together (group commit).

Each ``POST /api/deployments/{ref}/runs`` cost a read session, a write transaction of its
own (SQLite: one writer at a time, so they queued) and a Redis round trip. The creates that
arrive while one group is being written form the next group: their deployments are read
once per group, their runs written in one transaction, and queued in one Redis batch.

Each caller is answered only after the shared commit. A request whose own deployment or
parameters are refused gets its own error, and the others go on; a transaction that fails
fails every caller of its group, and writes nothing. A deployment deleted between its read
and the write (an integrity error) sends each create of the group through a transaction
of its own, so that only its runs are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from flowyard import schemas as s
from flowyard.errors import FlowyardError, NotFound
from flowyard.orchestrator import queue_sync, run_creation
from flowyard.orchestrator.deployment_versions import DeploymentVersions
from flowyard.orchestrator.runs import QueueEffect
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.store import Database
from flowyard.store import models as m

Row = dict[str, Any]
Outcome = Row | FlowyardError
"""A create's run row, or why that create alone was refused."""


@dataclass(frozen=True)
class Create:
    """One request's create: the deployment named, and what the run should have."""

    ref: str
    body: s.DeploymentRunRequest


@dataclass(frozen=True)
class _Checked:
    create: Create
    dep: m.Deployment
    parameters: dict[str, Any]


async def create_run(orch: Orchestrator, ref: str, body: s.DeploymentRunRequest) -> Row:
    """One Scheduled run of ``ref``, committed (with the creates of concurrent requests)
    and queued: its row (``documents`` encodes it)."""
    outcome = await orch.run_creates.submit(Create(ref, body), partial(_write_and_queue, orch))
    if isinstance(outcome, FlowyardError):
        raise outcome
    return outcome


async def _write_and_queue(orch: Orchestrator, creates: list[Create]) -> list[Outcome]:
    outcomes, effects = await orch.in_thread(
        write_group, orch.db, creates, orch.deployment_versions
    )
    await queue_sync.apply_many(orch, effects)
    return outcomes


def write_group(
    db: Database, creates: Sequence[Create], versions: DeploymentVersions | None = None
) -> tuple[list[Outcome], list[QueueEffect]]:
    """Check every create in one read session, then write the accepted ones in one
    transaction; one outcome per create, in order, and what to queue once committed.
    ``versions``: the deployments loaded before, by version (none: each is loaded)."""
    outcomes: list[Outcome | _Checked] = _checked(db, creates, versions or DeploymentVersions())
    accepted = [one for one in outcomes if isinstance(one, _Checked)]
    try:
        written = _insert(db, accepted)
    except IntegrityError:  # a deployment went meanwhile: find whose, one create at a time
        written = {}
        for one in accepted:
            try:
                written.update(_insert(db, [one]))
            except IntegrityError:
                written[id(one)] = NotFound(f"deployment {one.create.ref!r} not found")
    final = [written[id(one)] if isinstance(one, _Checked) else one for one in outcomes]
    effects = [
        effect
        for one in accepted
        if not isinstance(row := written[id(one)], FlowyardError)
        for effect in run_creation.enqueue_effects(one.dep, [row])
    ]
    return final, effects


def _checked(
    db: Database, creates: Sequence[Create], versions: DeploymentVersions
) -> list[Outcome | _Checked]:
    """Each create's deployment (read once per group) and parameters, or its refusal."""
    deployments: dict[str, m.Deployment] = {}
    checked: list[Outcome | _Checked] = []
    with db.read() as session:
        for create in creates:
            try:
                dep = deployments.get(create.ref) or versions.get(session, create.ref)
                deployments[create.ref] = dep
                (parameters,) = run_creation.checked_parameters(dep, create.body)
                run_creation.check_parent(session, create.body)
            except FlowyardError as exc:
                checked.append(exc)
                continue
            checked.append(_Checked(create, dep, parameters))
    return checked


def _insert(db: Database, accepted: Sequence[_Checked]) -> dict[int, Outcome]:
    """The runs of ``accepted`` in one transaction: each one's row, by ``id()``."""
    if not accepted:
        return {}
    now = datetime.now(UTC)
    with db.session() as session:
        return {
            id(one): run_creation.insert_requested(
                session, one.dep, one.create.body, [one.parameters], now
            )[0]
            for one in accepted
        }
