"""What happens to scheduled runs that did not start in time: the catch-up policies. Pure.

A deployment says, in ``catch_up``, what to do with the slots of its schedules that were
missed (the API was down, no worker was polling):

- ``all`` (default): every missed slot runs, late;
- ``latest``: only the most recent missed slot runs; older ones are skipped;
- ``skip``: a slot not started within the grace period is skipped ("skip if too late").

The policy applies twice, the same way: to slots the scheduler never wrote because it was
down (``missed_slots``), and to runs written in time that nobody started within the grace
period (``late_verdict``). A run that is late but kept is named Late and still runs.
Manual runs (no schedule) are only ever marked Late, never skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

CatchUp = Literal["all", "latest", "skip"]
POLICIES: tuple[str, ...] = get_args(CatchUp)


def missed_slots(slots: Sequence[datetime], policy: str, *, cap: int) -> list[datetime]:
    """Which of the missed ``slots`` (oldest first) to write under ``policy``."""
    if policy == "skip" or not slots:
        return []
    if policy == "latest":
        return [slots[-1]]
    return list(slots[-cap:])


@dataclass(frozen=True)
class DueRun:
    """A Scheduled run whose time has come, not started yet."""

    run_id: str
    deployment_id: str | None
    scheduled: bool  # written by a schedule (not a manual run)
    scheduled_time: datetime
    policy: str
    late: bool  # past its grace period
    named_late: bool = False  # already named Late by an earlier pass


@dataclass(frozen=True)
class Verdict:
    mark_late: list[str]
    skip: list[str]


def late_verdict(due: Sequence[DueRun]) -> Verdict:
    """Which late runs to name Late (and keep), and which to skip.

    Under ``latest``, a late run is skipped when its deployment has a newer due run (late
    or not): only the most recent slot runs.
    """
    newest: dict[str, datetime] = {}
    for run in due:
        if run.scheduled and run.deployment_id is not None:
            current = newest.get(run.deployment_id)
            if current is None or run.scheduled_time > current:
                newest[run.deployment_id] = run.scheduled_time
    mark, skip = [], []
    for run in (run for run in due if run.late):
        if not run.scheduled or run.policy == "all":
            keep = True
        elif run.policy == "skip":
            keep = False
        else:
            keep = run.deployment_id is None or run.scheduled_time >= newest[run.deployment_id]
        if not keep:
            skip.append(run.run_id)
        elif not run.named_late:
            mark.append(run.run_id)
    return Verdict(mark_late=mark, skip=skip)
