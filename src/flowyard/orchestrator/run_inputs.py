"""Messages sent to flow runs (Prefect's flow run input: ``send_input`` / ``receive_input``).

A message is a JSON object under a key unique within its run; a receiver reads the run's
messages whose key starts with a prefix (the type's, by default), oldest first, leaving
out the keys it read already. Bounded: 64 KiB a message, ``MAX_INPUTS_PER_RUN`` a run.
A final run takes messages too, as in Prefect (an answer may come after its asker ended;
its inputs are read through the API).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.errors import Conflict
from flowyard.schemas.pauses import MAX_INPUTS_PER_RUN
from flowyard.store import models as m

DUPLICATE = "A flow run input with this key already exists."  # Prefect's words


def create(session: Session, run: m.FlowRun, body: s.FlowRunInputCreate) -> None:
    """Store a message for ``run``; a key it has already, or one too many, is a 409."""
    of_run = m.FlowRunInput.flow_run_id == run.id
    if session.scalar(select(m.FlowRunInput.id).where(of_run, m.FlowRunInput.key == body.key)):
        raise Conflict(DUPLICATE)
    held = session.scalar(select(func.count()).select_from(m.FlowRunInput).where(of_run)) or 0
    if held >= MAX_INPUTS_PER_RUN:
        raise Conflict(
            f"flow run {run.id} holds {held} inputs: at most {MAX_INPUTS_PER_RUN} are kept"
        )
    session.add(
        m.FlowRunInput(flow_run_id=run.id, key=body.key, value=body.value, sender=body.sender)
    )


def matching(session: Session, run: m.FlowRun, body: s.FlowRunInputFilter) -> list[s.FlowRunInput]:
    """The run's messages under ``body.prefix`` not yet read, oldest first."""
    query = (
        select(m.FlowRunInput)
        .where(
            m.FlowRunInput.flow_run_id == run.id,
            m.FlowRunInput.key.startswith(body.prefix, autoescape=True),
            m.FlowRunInput.key.not_in(body.exclude_keys),
        )
        .order_by(m.FlowRunInput.id)
        .limit(body.limit)
    )
    return [
        s.FlowRunInput(
            flow_run_id=row.flow_run_id,
            key=row.key,
            value=row.value,
            sender=row.sender,
            created=row.created,
        )  # fmt: skip
        for row in session.scalars(query)
    ]
