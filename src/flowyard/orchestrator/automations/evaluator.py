"""The trigger evaluator: reads the stored events in order and evaluates every trigger, once.

It runs on the replica that holds the services' lease. Each step is one transaction: it
takes the position (``m.EvaluatorPosition``, bumping its version first so that a second
evaluator that read the same position finds it moved and rolls back), reads the next
events after it, updates the triggers' windows, records firings and their actions,
evaluates proactive windows and metric triggers that are due, and writes the new
position. So an API restart, or a second replica, neither loses nor repeats a firing.
The actions are queued as RQ jobs after the commit.

Events are read from the store by ``seq``. On PostgreSQL a transaction may commit after
one holding a later ``seq``; a position skipped that way is remembered for a while
(``GAP_SECONDS``) and its event evaluated when it appears. A step is woken by the event
stream (any replica's events) or runs every ``interval``.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from flowyard.events.schemas import Event
from flowyard.orchestrator.automations import firings, metric_triggers
from flowyard.orchestrator.automations.triggers import Armed, Armory, Match, Windows, covers
from flowyard.orchestrator.runtime import Orchestrator
from flowyard.schemas.automations import AutomationCore, MetricTrigger
from flowyard.store import Database
from flowyard.store import models as m

log = structlog.get_logger()

POSITION = "triggers"
BATCH = 1000
GAP_SECONDS = 60.0
"""How long a position skipped by a later commit is waited for (then given up: its
transaction rolled back, or took longer than any Flowyard transaction takes)."""
MAX_GAPS = 10_000
IDLE_ADVANCE_SECONDS = 10.0
GATHER_SECONDS = 0.02
"""After a wake-up, how long the evaluator lets more events arrive before it reads them, so
that a burst is read in one transaction rather than one per event."""


@dataclass
class Outcome:
    actions: list[str] = field(default_factory=list)
    events: int = 0
    more: bool = False  # a full batch: step again at once


@dataclass
class Evaluator:
    """The evaluator of one API process (it steps only while this replica leads)."""

    db: Database
    metric_interval: float = 5.0
    armory: Armory = field(default_factory=Armory)
    version: tuple[Any, ...] | None = None
    metrics_due: float = 0.0
    fired: int = 0
    idle_until: float = 0.0

    def step(self, now: datetime | None = None) -> Outcome:
        """Evaluate what happened since the last step; returns the actions to queue."""
        now = now or datetime.now(UTC)
        outcome = Outcome()
        if self._idle(now):
            return outcome
        with self.db.session() as session:
            position = self._take_position(session)
            if position is None:  # another evaluator moved it first (nothing written here)
                return outcome
            self._load(session)
            events, last_seq, gaps = self._read(session, position, now)
            windows = Windows(session, self._fire_into(session, outcome, now))
            matched = [
                Match.of(armed, event)
                for event, received in events
                for armed in self.armory.interested(event)
                # an automation reacts to the events stored after it was made
                if armed.automation.created <= received and covers(armed, event)
            ]
            windows.preload(matched)
            for match in matched:
                windows.on_event(match)
            windows.proactive_due(self.armory, now)
            if now.timestamp() >= self.metrics_due:
                self.metrics_due = now.timestamp() + self.metric_interval
                self._metrics(session, windows, outcome, now)
            windows.sweep(self.armory, now)
            position.seq = max(position.seq, last_seq)
            position.gaps = gaps
        outcome.events = len(events)
        outcome.more = len(events) >= BATCH
        return outcome

    def _idle(self, now: datetime) -> bool:
        """With no automation enabled there is nothing to evaluate: only now and then is
        the position moved on (without the store's write lock in between), so that the
        first automation does not start behind a long backlog."""
        with self.db.read() as session:
            enabled = session.scalar(select(func.count()).where(m.Automation.enabled))
        if enabled or now.timestamp() >= self.idle_until:
            self.idle_until = now.timestamp() + IDLE_ADVANCE_SECONDS
            return False
        return True

    def _take_position(self, session: Session) -> m.EvaluatorPosition | None:
        position = session.get(m.EvaluatorPosition, POSITION)
        if position is None:
            # a new server starts from now: the events before it predate its automations
            latest = session.scalar(select(func.max(m.Event.seq))) or 0
            position = m.EvaluatorPosition(name=POSITION, seq=latest, gaps={}, version=0)
            session.add(position)
            session.flush()
            return position
        taken = session.execute(
            update(m.EvaluatorPosition)
            .where(m.EvaluatorPosition.name == POSITION)
            .where(m.EvaluatorPosition.version == position.version)
            .values(version=position.version + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            return None
        session.refresh(position)
        return position

    def _load(self, session: Session) -> None:
        """(Re)load the enabled automations when any changed."""
        version = tuple(session.execute(select(func.count(), func.max(m.Automation.updated))).one())
        if version == self.version:
            return
        rows = []
        for row in session.scalars(select(m.Automation).where(m.Automation.enabled)):
            try:
                doc = AutomationCore.model_validate(
                    {"name": row.name, "trigger": row.trigger, "actions": row.actions,
                     "actions_on_trigger": row.actions_on_trigger,
                     "actions_on_resolve": row.actions_on_resolve, "dedupe": row.dedupe}
                )  # fmt: skip
            except ValidationError as exc:  # stored by an older version: skipped, said
                log.warning("automation_unreadable", automation=row.name, error=str(exc))
                continue
            session.expunge(row)
            rows.append((row, doc))
        self.armory = Armory.load(rows)
        self.version = version

    def _read(
        self, session: Session, position: m.EvaluatorPosition, now: datetime
    ) -> tuple[list[tuple[Event, datetime]], int, dict[str, Any]]:
        """The next events in ``seq`` order (with the skipped positions that appeared) and
        when each was stored, the last ``seq`` read, and the positions still missing."""
        gaps: dict[str, float] = dict(position.gaps or {})
        wanted = m.Event.seq > position.seq
        if gaps:
            wanted = or_(wanted, m.Event.seq.in_([int(seq) for seq in gaps]))
        rows = session.execute(select(*READ).where(wanted).order_by(m.Event.seq).limit(BATCH))
        events = []
        expected = position.seq + 1
        clock = now.timestamp()
        for row in rows:
            gaps.pop(str(row.seq), None)
            if row.seq > position.seq:
                for missing in range(expected, min(row.seq, expected + MAX_GAPS)):
                    gaps[str(missing)] = clock
                expected = max(expected, row.seq + 1)
            events.append((stored_event(row), row.received))
        kept = {seq: first for seq, first in gaps.items() if clock - first < GAP_SECONDS}
        oldest = sorted(kept.items(), key=lambda kv: int(kv[0]))[:MAX_GAPS]
        return events, expected - 1, dict(oldest)

    def _fire_into(self, session: Session, outcome: Outcome, now: datetime) -> Any:
        """Records a firing at the step's ``now`` (as a resolving is), so a step's firings
        and resolvings are ordered by the clock the step was given."""

        def fire(
            armed: Armed,
            bucket: m.AutomationBucket | None,
            event: Event | None,
            labels: dict[str, str],
            when: datetime,
        ) -> None:
            self.fired += 1
            if armed.parent is not None:
                windows = Windows(session, fire)
                windows.child_fired(self.armory, armed, event, when)
                return
            triggering = event.model_dump(mode="json") if event is not None else None
            if triggering is None and bucket is not None and bucket.last_event:
                triggering = bucket.last_event
            row = session.get(m.Automation, armed.automation.id)
            if row is not None:  # else deleted since it was loaded
                outcome.actions += firings.record(
                    session, row, "triggered", triggering, labels, now=now
                )

        return fire

    def _metrics(self, session: Session, windows: Windows, outcome: Outcome, now: datetime) -> None:
        for armed in list(self.armory.by_path.values()):
            if not isinstance(armed.trigger, MetricTrigger):
                continue
            changes = metric_triggers.evaluate(
                session, armed.automation.id, armed.path, armed.trigger, now
            )
            row = session.get(m.Automation, armed.automation.id)
            for change in changes:
                event = metric_event(armed, change, now)
                if change.state == "triggered":
                    windows.fire(armed, None, event, change.resource, now)
                elif armed.parent is None and row is not None:  # a child's resolving is moot
                    outcome.actions += firings.record(
                        session, row, "resolved", event.model_dump(mode="json"),
                        change.resource, now=now,
                    )  # fmt: skip


READ = (m.Event.seq, m.Event.id, m.Event.occurred, m.Event.event, m.Event.resource,
        m.Event.related, m.Event.payload, m.Event.follows, m.Event.received)  # fmt: skip


def stored_event(row: Any) -> Event:
    """An event as stored (it was checked when it was written: not validated again)."""
    return Event.model_construct(
        id=uuid.UUID(row.id), occurred=row.occurred, event=row.event, resource=row.resource,
        related=row.related or [], payload=row.payload or {},
        follows=uuid.UUID(row.follows) if row.follows else None,
    )  # fmt: skip


def metric_event(armed: Armed, change: metric_triggers.MetricChange, now: datetime) -> Event:
    """What a metric firing carries as its triggering event (templates read it)."""
    assert isinstance(armed.trigger, MetricTrigger)
    query = armed.trigger.metric
    return Event.model_construct(
        id=uuid.uuid4(),
        occurred=now,
        event=f"flowyard.metric.{query.name}",
        resource=change.resource,
        related=[],
        payload={
            "metric": query.name,
            "value": change.value,
            "operator": query.operator,
            "threshold": query.threshold,
            "state": change.state,
        },  # fmt: skip
        follows=None,
    )


async def run(orch: Orchestrator, interval: float = 1.0) -> None:
    """The evaluator's service loop: step when events arrive (or every ``interval``)."""
    evaluator = Evaluator(orch.db, orch.settings.automation_metric_interval_seconds)
    while not orch.stopping:
        news = orch.event_stream.news()  # set by this replica's next commit, even mid-step
        try:
            more = await _step(orch, evaluator)
        except Exception:
            log.exception("automation_evaluation_failed")
            more = False
        if not more:
            await orch.event_stream.wait_for_news(interval, news)
            await asyncio.sleep(GATHER_SECONDS)


async def _step(orch: Orchestrator, evaluator: Evaluator) -> bool:
    if not await orch.leadership.held():
        return False
    outcome = await orch.in_thread(evaluator.step)
    if outcome.actions:
        await orch.in_thread(orch.action_queue.enqueue, outcome.actions)
    return outcome.more
