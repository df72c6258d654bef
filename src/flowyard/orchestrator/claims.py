"""The store's half of a claim: Scheduled → Pending by compare-and-set, and what the worker gets.

This is the hottest path of the API, so it uses SQL core: one UPDATE per claimed run, one
INSERT for their history rows, and one SELECT for the documents. A deployment's document
is cached by (id, last update), which stays correct with several API replicas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.orchestrator import documents, events
from flowyard.orchestrator.lookups import get_deployment
from flowyard.pools import Claim
from flowyard.states import StateType
from flowyard.store import models as m

RUNS = cast(Table, m.FlowRun.__table__)
STATES = cast(Table, m.FlowRunState.__table__)
FLOWS = cast(Table, m.Flow.__table__)
DEPLOYMENTS = cast(Table, m.Deployment.__table__)
QUEUES = cast(Table, m.WorkQueue.__table__)
POOLS = cast(Table, m.WorkPool.__table__)

MARK_PENDING = (
    update(RUNS)
    .where(RUNS.c.id == bindparam("run_id"), RUNS.c.state_type == StateType.SCHEDULED)
    .values(
        state_type=StateType.PENDING,
        state_name=StateType.PENDING.display_name,
        state_message=None,
        state_timestamp=bindparam("now"),
        claim_token=bindparam("token"),
        worker_name=bindparam("worker"),
    )
)

INSERT_STATES = insert(STATES)

CLAIMED = (
    select(
        RUNS,
        FLOWS.c.name.label("flow_name"),
        DEPLOYMENTS.c.name.label("deployment_name"),
        DEPLOYMENTS.c.updated.label("deployment_updated"),
        DEPLOYMENTS.c.tags.label("deployment_tags"),
        QUEUES.c.name.label("queue_name"),
        POOLS.c.id.label("pool_id"),
        POOLS.c.name.label("pool_name"),
        POOLS.c.base_job_template,
    )
    .join(FLOWS, RUNS.c.flow_id == FLOWS.c.id)
    .join(QUEUES, RUNS.c.queue_id == QUEUES.c.id)
    .join(POOLS, QUEUES.c.pool_id == POOLS.c.id)
    .outerjoin(DEPLOYMENTS, RUNS.c.deployment_id == DEPLOYMENTS.c.id)
    .where(RUNS.c.id.in_(bindparam("run_ids", expanding=True)))
    .order_by(RUNS.c.scheduled_time)
)


@dataclass
class DeploymentDocs:
    """Deployment documents by (id, last update); a changed deployment is simply a new key."""

    limit: int = 1000
    _docs: dict[tuple[str, datetime], s.Deployment] = field(default_factory=dict)

    def get(self, session: Session, deployment_id: str, updated: datetime) -> s.Deployment:
        key = (deployment_id, updated)
        doc = self._docs.get(key)
        if doc is None:
            if len(self._docs) >= self.limit:
                self._docs.clear()
            doc = self._docs[key] = documents.deployment(get_deployment(session, deployment_id))
        return doc


Marked = tuple[list[s.ClaimedRun], list[Claim]]  # claims won (as the worker gets them), lost


def mark_pending(
    session: Session, claims: list[Claim], worker_name: str, docs: DeploymentDocs
) -> Marked:
    """Move each claimed run Scheduled → Pending; those that moved meanwhile are lost."""
    now = datetime.now(UTC)
    won: dict[str, Claim] = {}
    lost: list[Claim] = []
    connection = session.connection()  # SQL core: cheaper than the ORM's execute
    for claim in claims:
        params = {"run_id": claim.run_id, "now": now, "token": claim.token, "worker": worker_name}
        if connection.execute(MARK_PENDING, params).rowcount == 1:
            won[claim.run_id] = claim
        else:
            lost.append(claim)
    if not won:
        return [], lost
    pending = StateType.PENDING
    history = [
        {"flow_run_id": run_id, "type": pending, "name": pending.display_name, "timestamp": now}
        for run_id in won
    ]
    connection.execute(INSERT_STATES, history)
    rows = connection.execute(CLAIMED, {"run_ids": list(won)}).mappings().all()
    events.flow_run_rows(session, rows, StateType.SCHEDULED.value)  # its columns: RUN_LABELS
    return [_claimed_run(session, row, won[row["id"]].token, docs) for row in rows], lost


def replayed(
    session: Session, given: list[tuple[str, str]], worker_name: str, docs: DeploymentDocs
) -> list[s.ClaimedRun]:
    """The runs a claim request was given (``given``: run id, claim token), as it got them,
    for the same request sent again: those still Pending under that claim and worker."""
    tokens = dict(given)
    rows = session.execute(CLAIMED, {"run_ids": list(tokens)}).mappings().all()
    return [
        _claimed_run(session, row, tokens[row["id"]], docs)
        for row in rows
        if row["state_type"] == StateType.PENDING
        and row["claim_token"] == tokens[row["id"]]
        and row["worker_name"] == worker_name
    ]


def _claimed_run(session: Session, row: Any, token: str, docs: DeploymentDocs) -> s.ClaimedRun:
    deployment = None
    if row["deployment_id"] is not None:
        deployment = docs.get(session, row["deployment_id"], row["deployment_updated"])
    return s.ClaimedRun(
        run=documents.flow_run_of(row),
        token=token,
        deployment=deployment,
        base_job_template=row["base_job_template"],
    )
