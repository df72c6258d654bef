"""Triggers evaluated from stored events, by the evaluator's own steps at chosen times.

Each test writes events the way the server does (``events.record`` in a committed
session), then calls ``Evaluator.step(now)``: reactive windows, proactive windows,
compound and sequence triggers, dedupe, restarts and a second evaluator."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from flowyard.orchestrator import events
from flowyard.orchestrator.automations.evaluator import Evaluator
from flowyard.schemas.automations import AutomationCreate
from flowyard.states import StateType
from flowyard.store import Database
from flowyard.store import models as m
from tests.helpers.store_world import World

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
NOTHING = [{"type": "do-nothing"}]


def automate(db: Database, trigger: dict[str, Any], **fields: Any) -> str:
    """Store an automation (validated as the API would) made before any test event."""
    doc = AutomationCreate.model_validate(
        {"name": fields.pop("name", "a"), "trigger": trigger, "actions": NOTHING, **fields}
    ).model_dump(mode="json")
    with db.session() as session:
        fields = ("trigger", "actions", "actions_on_trigger", "actions_on_resolve", "dedupe")
        row = m.Automation(
            name=doc["name"], created=T0 - timedelta(days=1), **{f: doc[f] for f in fields}
        )
        session.add(row)
        session.flush()
        return row.id


def emit(db: Database, name: str, resource: str, at: datetime, **related: str) -> None:
    with db.session() as session:
        found = [events.related(role, role, ident) for role, ident in related.items()]
        events.record(session, name, {"flowyard.resource.id": resource}, found, occurred=at)


def fired(db: Database, automation_id: str) -> list[m.AutomationFiring]:
    with db.read() as session:
        rows = session.scalars(
            select(m.AutomationFiring)
            .where(m.AutomationFiring.automation_id == automation_id)
            .order_by(m.AutomationFiring.fired)
        ).all()
        session.expunge_all()
        return list(rows)


def started(db: Database) -> Evaluator:
    """An evaluator that has taken its first position (events from now on count)."""
    evaluator = Evaluator(db)
    evaluator.step(T0)
    return evaluator


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


FAILED_3_IN_60 = {
    "expect": ["flowyard.flow-run.Failed"],
    "for_each": ["related:deployment:flowyard.resource.id"],
    "threshold": 3,
    "within": 60,
}


def test_reactive_fires_once_per_window_and_again_after_it_resets(database):
    automation = automate(database, FAILED_3_IN_60)
    evaluator = started(database)
    for i in range(5):  # three fire it; two more in the same window do not
        emit(database, "flowyard.flow-run.Failed", f"flowyard.flow-run.r{i}", at(i), deployment="d")
        evaluator.step(at(i))
    assert len(fired(database, automation)) == 1
    for i in range(3):  # the window has reset: three more fire it again
        emit(
            database,
            "flowyard.flow-run.Failed",
            f"flowyard.flow-run.s{i}",
            at(70 + i),
            deployment="d",
        )
    evaluator.step(at(75))
    firings = fired(database, automation)
    assert len(firings) == 2
    assert firings[0].labels == {"related:deployment:flowyard.resource.id": "flowyard.deployment.d"}


def test_windows_are_kept_per_for_each_value(database):
    automation = automate(database, FAILED_3_IN_60)
    evaluator = started(database)
    for i in range(2):
        for dep in ("d1", "d2"):
            emit(
                database,
                "flowyard.flow-run.Failed",
                f"flowyard.flow-run.{dep}{i}",
                at(i),
                deployment=dep,
            )
    evaluator.step(at(3))
    assert fired(database, automation) == []
    emit(database, "flowyard.flow-run.Failed", "flowyard.flow-run.x", at(4), deployment="d2")
    evaluator.step(at(5))
    assert [f.labels for f in fired(database, automation)] == [
        {"related:deployment:flowyard.resource.id": "flowyard.deployment.d2"}
    ]


def test_a_restart_mid_window_neither_loses_nor_repeats(database):
    """The window and the position live in the store: a new evaluator (an API restarted)
    counts on from where the old one stopped, and re-reads nothing."""
    automation = automate(database, FAILED_3_IN_60)
    first = started(database)
    for i in range(2):
        emit(database, "flowyard.flow-run.Failed", f"flowyard.flow-run.r{i}", at(i), deployment="d")
    first.step(at(2))
    restarted = Evaluator(database)
    emit(database, "flowyard.flow-run.Failed", "flowyard.flow-run.r2", at(3), deployment="d")
    restarted.step(at(4))
    restarted.step(at(5))
    assert len(fired(database, automation)) == 1


def test_two_evaluators_stepping_at_once_fire_each_firing_once(database):
    """Two replicas' evaluators racing over the same events: each window fires once."""
    automation = automate(
        database, {"expect": ["shop.order"], "for_each": ["flowyard.resource.id"]}
    )
    evaluators = [started(database), Evaluator(database)]
    for i in range(40):
        emit(database, "shop.order", f"shop.order.{i}", at(i))

    def steps(evaluator: Evaluator) -> None:
        for _ in range(20):
            evaluator.step(at(60))

    threads = [threading.Thread(target=steps, args=(e,)) for e in evaluators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    labels = sorted(f.labels["flowyard.resource.id"] for f in fired(database, automation))
    assert labels == sorted(f"shop.order.{i}" for i in range(40))


def test_proactive_fires_for_a_run_still_running_past_the_window_only(database):
    automation = automate(database, {
        "posture": "Proactive", "after": ["flowyard.flow-run.Running"],
        "expect": ["flowyard.flow-run.Completed", "flowyard.flow-run.Failed"],
        "for_each": ["flowyard.resource.id"], "within": 5,
    })  # fmt: skip
    evaluator = started(database)
    for run in ("quick", "stuck"):
        emit(database, "flowyard.flow-run.Running", f"flowyard.flow-run.{run}", at(0))
    emit(database, "flowyard.flow-run.Completed", "flowyard.flow-run.quick", at(2))
    evaluator.step(at(3))
    assert fired(database, automation) == []
    evaluator.step(at(6))
    evaluator.step(at(30))
    firings = fired(database, automation)
    assert [f.labels for f in firings] == [{"flowyard.resource.id": "flowyard.flow-run.stuck"}]
    assert firings[0].triggering_event["event"] == "flowyard.flow-run.Running"


def test_a_state_that_does_not_persist_does_not_fire(database):
    """Notify only if Failed lasts 10 s: a Failed run that is retried at once stays quiet."""
    automation = automate(database, {
        "posture": "Proactive", "after": ["flowyard.flow-run.Failed"],
        "expect": ["flowyard.flow-run.*"], "for_each": ["flowyard.resource.id"], "within": 10,
    })  # fmt: skip
    evaluator = started(database)
    emit(database, "flowyard.flow-run.Failed", "flowyard.flow-run.retried", at(0))
    emit(database, "flowyard.flow-run.Failed", "flowyard.flow-run.failed", at(0))
    emit(database, "flowyard.flow-run.AwaitingRetry", "flowyard.flow-run.retried", at(2))
    evaluator.step(at(3))
    evaluator.step(at(11))
    assert [f.labels for f in fired(database, automation)] == [
        {"flowyard.resource.id": "flowyard.flow-run.failed"}
    ]


def test_compound_all_fires_when_every_child_fired_within_its_window(database):
    automation = automate(database, {
        "type": "compound", "require": "all", "within": 60,
        "triggers": [{"expect": ["shop.paid"]}, {"expect": ["shop.shipped"]}],
    })  # fmt: skip
    evaluator = started(database)
    emit(database, "shop.paid", "shop.order.1", at(0))
    evaluator.step(at(1))
    assert fired(database, automation) == []
    emit(database, "shop.shipped", "shop.order.1", at(100))  # too late for the first
    evaluator.step(at(101))
    assert fired(database, automation) == []
    emit(database, "shop.paid", "shop.order.2", at(110))
    evaluator.step(at(111))
    assert len(fired(database, automation)) == 1


def test_sequence_fires_only_in_order(database):
    automation = automate(database, {
        "type": "sequence", "within": 60,
        "triggers": [{"expect": ["shop.paid"]}, {"expect": ["shop.shipped"]}],
    })  # fmt: skip
    evaluator = started(database)
    emit(database, "shop.shipped", "shop.order.1", at(0))
    emit(database, "shop.paid", "shop.order.1", at(1))
    evaluator.step(at(2))
    assert fired(database, automation) == []
    emit(database, "shop.shipped", "shop.order.1", at(3))
    evaluator.step(at(4))
    assert len(fired(database, automation)) == 1


def test_dedupe_acts_once_per_key_per_window_and_records_the_rest(database):
    automation = automate(database, {"expect": ["shop.alarm"]}, dedupe={"window": 60})
    evaluator = started(database)
    for i in range(3):
        emit(database, "shop.alarm", "shop.line.1", at(i))
    emit(database, "shop.alarm", "shop.line.2", at(3))
    evaluator.step(at(4))
    firings = fired(database, automation)
    assert [f.suppressed for f in firings] == [False, True, True, False]
    with database.read() as session:
        acted = session.scalars(select(m.AutomationAction.firing_id)).all()
    assert sorted(acted) == sorted(f.id for f in firings if not f.suppressed)


def test_events_stored_before_the_automation_do_not_count(database):
    evaluator = started(database)
    emit(database, "shop.order", "shop.order.1", at(0))
    with database.session() as session:  # made after the event was stored
        session.add(m.Automation(name="late", trigger={"type": "event", "expect": ["shop.order"]},
                                 actions=NOTHING))  # fmt: skip
    evaluator.step(at(1))
    with database.read() as session:
        assert session.scalars(select(m.AutomationFiring)).all() == []


def test_an_event_committed_after_a_later_one_is_still_evaluated(database):
    """PostgreSQL may commit seq N after N+1: the evaluator remembers the gap and reads N
    when it appears (simulated here by writing the two positions in that order)."""
    automation = automate(
        database, {"expect": ["shop.order"], "for_each": ["flowyard.resource.id"]}
    )
    evaluator = started(database)
    with database.read() as session:
        base = session.scalar(select(m.EvaluatorPosition.seq))
    emit(database, "shop.order", "shop.order.first", at(0))
    with database.session() as session:  # the later one lands first …
        row = session.scalars(
            select(m.Event).where(m.Event.resource_id == "shop.order.first")
        ).one()
        row.seq = base + 1000
    evaluator.step(at(1))
    emit(database, "shop.order", "shop.order.second", at(2))
    with database.session() as session:  # … then the one before it
        row = session.scalars(
            select(m.Event).where(m.Event.resource_id == "shop.order.second")
        ).one()
        row.seq = base + 999
    evaluator.step(at(3))
    labels = sorted(f.labels["flowyard.resource.id"] for f in fired(database, automation))
    assert labels == ["shop.order.first", "shop.order.second"]


def test_a_metric_trigger_fires_and_resolves_through_the_evaluator(database):
    """A deployment's failure rate over 50 % fires the automation once (its firing carries
    the measured value), and resolving runs the actions on resolve."""
    world = World(database)
    queue = world.pool("p")[1]
    deployment = world.deployment("nightly", queue)
    automation = automate(
        database,
        {"type": "metric", "match": {"flowyard.resource.id": f"flowyard.deployment.{deployment}"},
         "metric": {"name": "failures", "operator": ">", "threshold": 0.5, "range": 600}},
        actions_on_resolve=NOTHING,
    )  # fmt: skip
    evaluator = started(database)
    for i in range(3):
        world.ended(StateType.FAILED, deployment, at(i))
    evaluator.step(at(10))
    evaluator.step(at(20))  # still failing: no second firing
    firings = fired(database, automation)
    assert [(f.state, f.triggering_event["payload"]["value"]) for f in firings] == [
        ("triggered", 1.0)
    ]
    for i in range(4):
        world.ended(StateType.COMPLETED, deployment, at(30 + i))
    evaluator.step(at(40))
    firings = fired(database, automation)
    assert [f.state for f in firings] == ["triggered", "resolved"]
    with database.read() as session:
        resolved = session.scalars(
            select(m.AutomationAction).where(m.AutomationAction.firing_id == firings[1].id)
        ).all()
    assert [a.when for a in resolved] == ["resolve"]


def test_a_metric_trigger_is_a_child_of_a_compound_trigger_like_any_other(database):
    world = World(database)
    queue = world.pool("p")[1]
    automation = automate(database, {
        "type": "compound", "require": "all", "within": 600,
        "triggers": [
            {"type": "metric", "metric": {"name": "queue_depth", "operator": ">=", "threshold": 2}},
            {"expect": ["shop.alarm"]},
        ],
    })  # fmt: skip
    evaluator = started(database)
    deployment = world.deployment("d", queue)
    for _ in range(2):
        world.run(StateType.SCHEDULED, deployment=deployment, scheduled=at(-60))
    emit(database, "shop.alarm", "shop.line.1", at(1))
    evaluator.step(at(2))
    assert fired(database, automation) == []  # the metric is measured every 5 s
    evaluator.step(at(10))
    assert len(fired(database, automation)) == 1
