"""Event triggers' windows (buckets), and compound and sequence triggers, as Prefect defines them.

One bucket is open per event trigger and value of its ``for_each`` labels; it counts the
expected events between its start and end. A reactive trigger fires as soon as its
bucket reaches ``threshold``, and then waits for the rest of the window (the next bucket
starts where this one ends), so a burst fires once per window. A proactive trigger fires
when its bucket ends with fewer than ``threshold`` events; with ``after``, a bucket opens
only when an ``after`` event arrives. A child of a compound or sequence trigger that fires
is recorded; the parent fires when enough children (or all, in order) fired within its
window.

Everything here reads and writes through the evaluator's session: the windows change in
the same transaction as the position the evaluator read up to.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from flowyard.events.schemas import RESOURCE_ID, RESOURCE_ROLE, Event
from flowyard.orchestrator.automations.matching import any_matches, spec_includes, spec_matches
from flowyard.schemas.automations import (
    AutomationCore,
    CompoundTrigger,
    EventTrigger,
    SequenceTrigger,
    walk,
)
from flowyard.store import models as m

LOOKBACK = timedelta(seconds=15)
"""How far before its first event a new reactive window starts, so that events stored a
little out of order still count (Prefect's preceding-event lookback)."""
MAX_KEY = 1024
PRELOAD_CHUNK = 300

Fire = Callable[
    ["Armed", "m.AutomationBucket | None", "Event | None", dict[str, str], datetime], None
]
"""Called when a trigger fires: the trigger, its bucket, the triggering event (None for a
proactive firing without one), the ``for_each`` labels, and when."""


@dataclass(frozen=True)
class Armed:
    """One trigger of an enabled automation, at ``path`` in its tree."""

    automation: m.Automation
    doc: AutomationCore
    path: str
    trigger: Any
    parent: str | None  # the path of its compound or sequence parent

    @property
    def event_trigger(self) -> EventTrigger:
        assert isinstance(self.trigger, EventTrigger)
        return self.trigger


@dataclass
class Shelf:
    """The triggers reacting to one event name (or prefix), by a label their ``match``
    requires an exact value of, so that an event meets only the triggers of its resource."""

    keyed: dict[str, dict[str, list[Armed]]] = field(default_factory=dict)
    loose: list[Armed] = field(default_factory=list)

    def add(self, armed: Armed, match: dict[str, str | list[str]]) -> None:
        for label, expected in match.items():
            values = [expected] if isinstance(expected, str) else expected
            if values and not any(v.endswith("*") or v.startswith("!") for v in values):
                for value in set(values):
                    self.keyed.setdefault(label, {}).setdefault(value, []).append(armed)
                return
        self.loose.append(armed)

    def pick(self, resource: dict[str, str]) -> list[Armed]:
        found = list(self.loose)
        for label, by_value in self.keyed.items():
            value = resource.get(label)
            if value is not None:
                found += by_value.get(value, ())
        return found


@dataclass
class Armory:
    """The triggers of the enabled automations, indexed by the event names they react to
    (then by a label of their resource), so an event meets only the triggers it may concern."""

    by_path: dict[tuple[str, str], Armed] = field(default_factory=dict)
    exact: dict[str, Shelf] = field(default_factory=dict)
    prefixed: dict[str, Shelf] = field(default_factory=dict)
    every: Shelf = field(default_factory=Shelf)  # no names, or negated ones

    @classmethod
    def load(cls, rows: Iterable[tuple[m.Automation, AutomationCore]]) -> Armory:
        armory = cls()
        for row, doc in rows:
            for path, trigger in walk(doc.trigger):
                parent = path.rsplit(".", 1)[0] if "." in path else None
                armed = Armed(row, doc, path, trigger, parent)
                armory.by_path[(row.id, path)] = armed
                if isinstance(trigger, EventTrigger):
                    armory._index(armed, trigger)
        return armory

    def _index(self, armed: Armed, trigger: EventTrigger) -> None:
        names = [*trigger.after, *trigger.expect]
        if not trigger.expect or any(name.startswith("!") for name in names):
            self.every.add(armed, trigger.match)
            return
        for name in set(names):
            if name.endswith("*"):
                self.prefixed.setdefault(name[:-1], Shelf()).add(armed, trigger.match)
            else:
                self.exact.setdefault(name, Shelf()).add(armed, trigger.match)

    def interested(self, event: Event) -> list[Armed]:
        """The event triggers ``event`` may concern (each once)."""
        name, resource = event.event, event.resource
        shelf = self.exact.get(name)
        found = shelf.pick(resource) if shelf is not None else []
        for prefix, shelf in self.prefixed.items():
            if name.startswith(prefix):
                found += shelf.pick(resource)
        found += self.every.pick(resource)
        if len(found) < 2:
            return found
        unique: dict[tuple[str, str], Armed] = {}
        for armed in found:
            unique.setdefault((armed.automation.id, armed.path), armed)
        return list(unique.values())

    def event_triggers(self) -> list[Armed]:
        return [a for a in self.by_path.values() if isinstance(a.trigger, EventTrigger)]


# -- what an event means to a trigger ----------------------------------------------------


def starts_after(trigger: EventTrigger, name: str) -> bool:
    return bool(trigger.after) and any_matches(trigger.after, name)


def expects(trigger: EventTrigger, name: str) -> bool:
    return not trigger.expect or any_matches(trigger.expect, name)


def covers(armed: Armed, event: Event) -> bool:
    """Is ``event`` one the trigger watches (its name, its resource, its related ones)?"""
    trigger = armed.event_trigger
    if not (starts_after(trigger, event.event) or expects(trigger, event.event)):
        return False
    if trigger.match and not spec_matches(trigger.match, event.resource):
        return False
    related = trigger.match_related
    specs = related if isinstance(related, list) else [related]
    if not all(spec_includes(spec, event.related) for spec in specs):
        return False
    if event.event.startswith("flowyard.automation."):
        # an automation does not react to its own firings (that would loop)
        return event.resource.get(RESOURCE_ID) != f"flowyard.automation.{armed.automation.id}"
    return True


def labels_of(trigger: EventTrigger, event: Event) -> dict[str, str]:
    """The values of the trigger's ``for_each`` labels on ``event`` ('' when absent)."""
    return {label: _label(event, label) or "" for label in sorted(trigger.for_each)}


def _label(event: Event, label: str) -> str | None:
    if label.startswith("related:"):
        _, role, name = (label.split(":", 2) + ["", ""])[:3]
        for resource in event.related:
            if resource.get(RESOURCE_ROLE) == role:
                return resource.get(name)
        return None
    return event.resource.get(label)


def bucket_key(labels: dict[str, str]) -> str:
    key = json.dumps(list(labels.values()), ensure_ascii=False)
    if len(key) > MAX_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def labels_of_key(trigger: EventTrigger, key: str) -> dict[str, str]:
    """The ``for_each`` labels a bucket's key holds (none when it had to be hashed)."""
    if key.startswith("sha256:"):
        return {}
    return dict(zip(sorted(trigger.for_each), json.loads(key), strict=False))


@dataclass(frozen=True)
class Match:
    """An event a trigger covers, with the values of its ``for_each`` labels on it."""

    armed: Armed
    event: Event
    labels: dict[str, str]
    key: str

    @classmethod
    def of(cls, armed: Armed, event: Event) -> Match:
        labels = labels_of(armed.event_trigger, event)
        return cls(armed, event, labels, bucket_key(labels))


# -- windows -----------------------------------------------------------------------------


@dataclass
class Windows:
    """The evaluator's view of the buckets and child firings, in its session.

    Buckets read or made in the step are held here (the session's identity map holds clean
    objects weakly: each would be read again for every event)."""

    session: Session
    fire: Fire
    held: dict[tuple[str, str, str], m.AutomationBucket | None] = field(default_factory=dict)

    def preload(self, matched: Iterable[Match]) -> None:
        """Read, in a few queries, the buckets these matches will need."""
        wanted = {(m.armed.automation.id, m.armed.path, m.key) for m in matched} - self.held.keys()
        pks = list(wanted)
        columns = (m.AutomationBucket.automation_id, m.AutomationBucket.trigger,
                   m.AutomationBucket.key)  # fmt: skip
        for i in range(0, len(pks), PRELOAD_CHUNK):
            chunk = pks[i : i + PRELOAD_CHUNK]
            for bucket in self.session.scalars(
                select(m.AutomationBucket).where(tuple_(*columns).in_(chunk))
            ):
                self.held[(bucket.automation_id, bucket.trigger, bucket.key)] = bucket
        for pk in pks:
            self.held.setdefault(pk, None)

    def _bucket(self, pk: tuple[str, str, str]) -> m.AutomationBucket | None:
        if pk not in self.held:
            self.held[pk] = self.session.get(m.AutomationBucket, pk)
        return self.held[pk]

    def on_event(self, match: Match) -> None:
        """Count an event the trigger ``covers`` and fire if a reactive trigger's threshold
        is met."""
        armed, event, labels, key = match.armed, match.event, match.labels, match.key
        trigger = armed.event_trigger
        occurred = event.occurred
        within = timedelta(seconds=trigger.within)
        bucket = None
        if starts_after(trigger, event.event):
            # an event both ``after`` and ``expect``ed opens a window without counting in it
            initial = -1 if expects(trigger, event.event) else 0
            bucket = self._ensure(armed, key, occurred, occurred + within, event, initial)
        if bucket is None and not trigger.after and expects(trigger, event.event):
            bucket = self._ensure(armed, key, occurred - LOOKBACK, occurred + within, event)
        if not expects(trigger, event.event):
            return
        if bucket is None:
            bucket = self._bucket((armed.automation.id, armed.path, key))
            if bucket is None:
                return
        self.evaluate(armed, bucket, occurred, event, labels)

    def evaluate(
        self,
        armed: Armed,
        bucket: m.AutomationBucket,
        now: datetime,
        event: Event | None,
        labels: dict[str, str],
    ) -> m.AutomationBucket | None:
        """Prefect's evaluation of one bucket at ``now`` (an event's time, or the clock's)."""
        trigger = armed.event_trigger
        count = 1 if event is not None else 0
        if now < bucket.start:
            return bucket  # late, or the rest of a reactive window that already fired
        immediate = trigger.posture == "Reactive" and trigger.within == 0
        if count and (immediate or bucket.start <= now < bucket.end):
            bucket.count += count
            if _keeps_last(armed):
                bucket.last_event = _brief(event)
            count = 0
        ready = trigger.posture == "Reactive" or bucket.end <= now
        if ready and _meets(trigger, bucket.count):
            self._drop(bucket)
            self.fire(armed, bucket, event, labels, now)
        elif now < bucket.end:
            if (
                event is not None
                and trigger.posture == "Proactive"
                and starts_after(trigger, event.event)
                and expects(trigger, event.event)
            ):  # e.g. heartbeats: each one restarts the window it expects the next in
                self._drop(bucket)
                return self._ensure(armed, bucket.key, now, now + _within(trigger), event, 0)
            return bucket
        else:
            self._drop(bucket)
        if trigger.after or trigger.within == 0:
            return None
        start = max(bucket.end, now)
        if trigger.posture == "Reactive" and count > 0:  # an event beyond the window
            fresh = self._ensure(armed, bucket.key, start, start + _within(trigger), None, 0)
            return self.evaluate(armed, fresh, now, event, labels)
        return self._ensure(armed, bucket.key, start, start + _within(trigger), None, count)

    def _drop(self, bucket: m.AutomationBucket) -> None:
        """Close a bucket now (so that a new one may take its key in this transaction)."""
        self.held[(bucket.automation_id, bucket.trigger, bucket.key)] = None
        if bucket in self.session.new:
            self.session.expunge(bucket)
        else:
            self.session.delete(bucket)
            self.session.flush()

    def _ensure(
        self,
        armed: Armed,
        key: str,
        start: datetime,
        end: datetime,
        event: Event | None,
        initial: int = 0,
    ) -> m.AutomationBucket:
        """The open bucket for ``key``, started now if there is none (an open one is kept)."""
        pk = (armed.automation.id, armed.path, key)
        bucket = self._bucket(pk)
        kept = _brief(event) if _keeps_last(armed) else None
        if bucket is None:
            bucket = m.AutomationBucket(
                automation_id=pk[0], trigger=pk[1], key=key, start=start, end=end,
                count=initial, last_event=kept,
            )  # fmt: skip
            self.session.add(bucket)
            self.held[pk] = bucket
        elif kept is not None:
            bucket.last_event = kept
        return bucket

    def proactive_due(self, armory: Armory, now: datetime) -> None:
        """Evaluate the proactive windows that ended by ``now`` (and open the rolling window
        of a proactive trigger that needs no event to start one)."""
        proactive = {
            (a.automation.id, a.path): a
            for a in armory.event_triggers()
            if a.event_trigger.posture == "Proactive"
        }
        if not proactive:
            return
        for armed in proactive.values():
            trigger = armed.event_trigger
            if not trigger.after and not trigger.for_each:
                self._ensure(armed, bucket_key({}), now, now + _within(trigger), None)
        self.session.flush()
        ended = self.session.scalars(
            select(m.AutomationBucket)
            .where(m.AutomationBucket.end <= now)
            .where(m.AutomationBucket.automation_id.in_({a for a, _ in proactive}))
            .order_by(m.AutomationBucket.end)
            .limit(1000)
        ).all()
        for bucket in ended:
            due = proactive.get((bucket.automation_id, bucket.trigger))
            if due is not None:
                labels = labels_of_key(due.event_trigger, bucket.key)
                self.evaluate(due, bucket, now, None, labels)

    def sweep(self, armory: Armory, now: datetime) -> None:
        """Forget reactive windows long over (they can no longer count anything) and the
        windows of triggers that are gone or paused."""
        live = {key for key, a in armory.by_path.items() if isinstance(a.trigger, EventTrigger)}
        stale = self.session.scalars(
            select(m.AutomationBucket).where(m.AutomationBucket.end < now - LOOKBACK).limit(1000)
        ).all()
        for bucket in stale:
            armed = armory.by_path.get((bucket.automation_id, bucket.trigger))
            if (bucket.automation_id, bucket.trigger) not in live or (
                armed is not None and armed.event_trigger.posture == "Reactive"
            ):
                self.session.delete(bucket)

    # -- compound and sequence -----------------------------------------------------------

    def child_fired(
        self, armory: Armory, armed: Armed, event: Event | None, when: datetime
    ) -> None:
        """Record that ``armed`` (a child) fired; fire its parent if that completes it."""
        assert armed.parent is not None
        parent = armory.by_path[(armed.automation.id, armed.parent)]
        composite: CompoundTrigger | SequenceTrigger = parent.trigger
        if isinstance(composite, CompoundTrigger) and composite.needed == 1:
            self.fire(parent, None, event, {}, when)
            return
        where = (
            m.AutomationChildFiring.automation_id == armed.automation.id,
            m.AutomationChildFiring.parent == parent.path,
        )
        if composite.within is not None:
            horizon = when - timedelta(seconds=composite.within)
            self.session.execute(delete(m.AutomationChildFiring).where(*where).where(
                m.AutomationChildFiring.fired < horizon
            ))  # fmt: skip
        pk = (armed.automation.id, parent.path, armed.path)
        row = self.session.get(m.AutomationChildFiring, pk)
        if row is None:
            row = m.AutomationChildFiring(
                automation_id=pk[0], parent=pk[1], child=pk[2], fired=when
            )
            self.session.add(row)
        row.fired, row.event = when, _brief(event)
        self.session.flush()
        fired = self.session.scalars(select(m.AutomationChildFiring).where(*where)).all()
        if not _complete(composite, parent.path, fired):
            return
        for child in fired:
            self.session.delete(child)
        self.session.flush()
        self.fire(parent, None, event, {}, when)


def _complete(
    composite: CompoundTrigger | SequenceTrigger,
    path: str,
    fired: Sequence[m.AutomationChildFiring],
) -> bool:
    if isinstance(composite, CompoundTrigger):
        return len(fired) >= composite.needed
    order = [row.child for row in sorted(fired, key=lambda row: row.fired)]
    return order == [f"{path}.{i}" for i in range(len(composite.triggers))]


def _meets(trigger: EventTrigger, count: int) -> bool:
    if trigger.posture == "Reactive":
        return count >= trigger.threshold
    return count < trigger.threshold


def _within(trigger: EventTrigger) -> timedelta:
    return timedelta(seconds=trigger.within)


def _keeps_last(armed: Armed) -> bool:
    """A proactive window keeps its last event: a firing when it ends names it (a reactive
    firing names the event that fired it)."""
    return armed.event_trigger.posture == "Proactive"


def _brief(event: Event | None) -> dict[str, Any] | None:
    return None if event is None else event.model_dump(mode="json")
