"""Where a flow run sits in its tree: the run above it (through the task run that stands
for it in its parent) and the outermost one, as far as ``MAX_CHILD_DEPTH`` levels up.

A child run made in its parent's process knows its lineage from there; a deployment's
run started from a flow (``run_deployment``) runs elsewhere and learns it from the
answer to its Running state (``runtime.flow_run.parent_flow_run_id``, ...).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from flowyard import schemas as s
from flowyard.store import models as m

MAX_CHILD_DEPTH = 16
"""How far below its root a child run may sit (and how far up a walk goes)."""


def parent_run(session: Session, run: m.FlowRun) -> m.FlowRun | None:
    """The flow run ``run`` is a child of, or None."""
    parent = session.get(m.TaskRun, run.parent_task_run_id) if run.parent_task_run_id else None
    return session.get(m.FlowRun, parent.flow_run_id) if parent and parent.flow_run_id else None


def of(session: Session, run: m.FlowRun) -> s.RunLineage:
    """The run's parent, its root and its parent's deployment (all None for a root run)."""
    parent = parent_run(session, run)
    if parent is None:
        return s.RunLineage()
    root = parent
    for _ in range(MAX_CHILD_DEPTH):
        above = parent_run(session, root)
        if above is None:
            break
        root = above
    return s.RunLineage(
        parent_flow_run_id=parent.id,
        root_flow_run_id=root.id,
        parent_deployment_id=parent.deployment_id,
    )
