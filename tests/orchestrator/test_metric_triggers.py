"""Metric triggers on a real store (SQLite and PostgreSQL): runs written directly, ``evaluate``
called at explicit times."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete, text

from flowyard.orchestrator.automations import metric_triggers
from flowyard.orchestrator.automations.metric_triggers import MetricChange, evaluate
from flowyard.schemas.automations import MetricTrigger
from flowyard.states import StateType
from flowyard.store import Database
from flowyard.store import models as m
from tests.helpers.store_world import T0, World

ID, NAME = "flowyard.resource.id", "flowyard.resource.name"
CLEARED = (
    m.AutomationMetricState,
    m.Automation,
    m.FlowRunState,
    m.FlowRun,
    m.Deployment,
    m.Flow,
    m.WorkQueue,
    m.WorkPool,
)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def migrated(request, tmp_path_factory):
    """One migrated database of each kind for the module (migrating is the slow part)."""
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path_factory.mktemp('metrics') / 'store.db'}")
    else:
        db = Database(request.getfixturevalue("postgres_server").url)
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.migrate()
    yield db
    db.dispose()


@pytest.fixture
def world(migrated):
    """An empty store with one automation to hang metric states on."""
    with migrated.session() as session:
        for model in CLEARED:
            session.execute(delete(model))
        session.add(m.Automation(id="auto", name="auto", trigger={}))
    return World(migrated)


def metric(match: dict[str, Any] | None = None, **query: Any) -> MetricTrigger:
    return MetricTrigger.model_validate({"match": match or {}, "metric": query})


def test_failure_rate_fires_once_stays_quiet_and_resolves_once(world):
    """Above the threshold: one 'triggered', silence while it holds, one 'resolved' after."""
    pool, queue = world.pool("p")
    dep = world.deployment("nightly", queue)
    for state in (StateType.FAILED, StateType.CRASHED, StateType.COMPLETED):
        world.ended(state, dep, T0 - timedelta(seconds=60))
    world.ended(StateType.CANCELLED, dep, T0 - timedelta(seconds=50))
    world.ended(StateType.FAILED, dep, T0 - timedelta(seconds=400))  # out of range
    trigger = metric(name="failures", operator=">", threshold=0.4, range=300)
    labels = {ID: f"flowyard.deployment.{dep}", NAME: "nightly"}

    assert world.evaluate(trigger, T0) == [MetricChange("triggered", labels, 0.5)]
    assert world.evaluate(trigger, T0 + timedelta(seconds=5)) == []
    assert world.states() == [(labels[ID], True, 0.5, T0)]

    for _ in range(4):
        world.ended(StateType.COMPLETED, dep, T0 + timedelta(seconds=8))
    assert world.evaluate(trigger, T0 + timedelta(seconds=10)) == [
        MetricChange("resolved", labels, 0.25)
    ]
    assert world.evaluate(trigger, T0 + timedelta(seconds=15)) == []
    assert world.states() == []


def test_success_rate_below_threshold(world):
    """``successes`` is the completed share of the runs that ended in range."""
    _, queue = world.pool("p")
    dep = world.deployment("d", queue)
    world.ended(StateType.COMPLETED, dep, T0 - timedelta(seconds=5))
    world.ended(StateType.FAILED, dep, T0 - timedelta(seconds=5))
    world.ended(StateType.FAILED, dep, T0 - timedelta(seconds=5))
    trigger = metric(name="successes", operator="<", threshold=0.5, range=60)
    [change] = world.evaluate(trigger, T0)
    assert change.state == "triggered" and change.value == pytest.approx(1 / 3)


def test_firing_for_delays_the_firing(world):
    """The condition must hold ``firing_for`` seconds; dropping before then fires nothing."""
    _, queue = world.pool("p")
    dep = world.deployment("d", queue)
    world.ended(StateType.FAILED, dep, T0 - timedelta(seconds=1))
    trigger = metric(name="failures", operator=">=", threshold=1, range=300, firing_for=60)
    rid = f"flowyard.deployment.{dep}"

    assert world.evaluate(trigger, T0) == []
    assert world.states() == [(rid, False, 1.0, T0)]
    assert world.evaluate(trigger, T0 + timedelta(seconds=59)) == []
    [change] = world.evaluate(trigger, T0 + timedelta(seconds=60))
    assert change.state == "triggered" and change.resource[ID] == rid
    assert world.evaluate(trigger, T0 + timedelta(seconds=65)) == []

    world.ended(StateType.COMPLETED, dep, T0 + timedelta(seconds=66))
    assert [c.state for c in world.evaluate(trigger, T0 + timedelta(seconds=70))] == ["resolved"]
    # held again, then dropped before firing_for: the state goes, silently
    world.ended(StateType.FAILED, dep, T0 + timedelta(seconds=500))
    assert world.evaluate(trigger, T0 + timedelta(seconds=500)) == []
    assert world.states() == [(rid, False, 1.0, T0 + timedelta(seconds=500))]
    world.ended(StateType.COMPLETED, dep, T0 + timedelta(seconds=501))
    assert world.evaluate(trigger, T0 + timedelta(seconds=510)) == []
    assert world.states() == []


def test_no_runs_in_range_is_no_value_and_leaves_the_state(world):
    """Without runs that ended in range nothing is evaluated: no change, a firing state stays."""
    _, queue = world.pool("p")
    dep = world.deployment("d", queue)
    trigger = metric(name="failures", operator=">", threshold=0.5, range=60)
    assert world.evaluate(trigger, T0) == []
    assert world.states() == []

    world.ended(StateType.FAILED, dep, T0 + timedelta(seconds=10))
    assert [c.state for c in world.evaluate(trigger, T0 + timedelta(seconds=20))] == ["triggered"]
    assert world.evaluate(trigger, T0 + timedelta(seconds=500)) == []  # the run left the range
    assert [(firing, value) for _, firing, value, _ in world.states()] == [(True, 1.0)]


def test_queue_depth_and_late_runs_of_a_pool(world):
    """A pool counts the runs of all its queues: due and unclaimed ones, and those named Late."""
    pool, q1, q2 = world.pool("p", ("high", "low"))
    other, q3 = world.pool("other")
    dep = world.deployment("d", q1)
    world.run(StateType.SCHEDULED, deployment=dep, scheduled=T0 - timedelta(seconds=5))
    world.run(StateType.SCHEDULED, queue=q2, scheduled=T0 - timedelta(seconds=90), name="Late")
    world.run(StateType.SCHEDULED, queue=q2, scheduled=T0 - timedelta(seconds=99), name="Late")
    world.run(StateType.SCHEDULED, queue=q1, scheduled=T0 + timedelta(seconds=60))  # not due
    world.run(StateType.SCHEDULED, queue=q1, scheduled=T0, claim="held")  # a retry in its engine
    world.run(StateType.PENDING, queue=q1, scheduled=T0 - timedelta(seconds=5))
    world.run(StateType.SCHEDULED, queue=q3, scheduled=T0 - timedelta(seconds=5))
    match = {ID: f"flowyard.work-pool.{pool}"}
    labels = {ID: f"flowyard.work-pool.{pool}", NAME: "p"}

    depth = metric(match, name="queue_depth", operator=">=", threshold=3)
    assert world.evaluate(depth, T0) == [MetricChange("triggered", labels, 3.0)]
    late = metric(match, name="late_runs", operator=">", threshold=1)
    assert world.evaluate(late, T0, path="1") == [MetricChange("triggered", labels, 2.0)]


def test_queue_depth_of_a_queue_is_zero_when_empty(world):
    """Counts have a value, 0, for a resource without such runs: the condition is evaluated."""
    _, queue = world.pool("p", ("busy",))
    world.run(StateType.SCHEDULED, queue=queue, scheduled=T0 - timedelta(seconds=1))
    trigger = metric({ID: "flowyard.work-queue.*"}, name="queue_depth", operator=">", threshold=0)
    assert [c.state for c in world.evaluate(trigger, T0)] == ["triggered"]
    with world.db.session() as session:
        session.execute(delete(m.FlowRun))
    assert world.evaluate(trigger, T0 + timedelta(seconds=5)) == [
        MetricChange("resolved", {ID: f"flowyard.work-queue.{queue}", NAME: "busy"}, 0.0)
    ]


def test_duration_and_lateness_are_means_in_seconds(world):
    """``duration``: mean run time of runs ended in range; ``lateness``: mean start delay."""
    _, queue = world.pool("p")
    dep = world.deployment("d", queue)
    for delay, ran in ((5.0, 10.0), (15.0, 30.0)):
        scheduled = T0 - timedelta(seconds=100)
        started = scheduled + timedelta(seconds=delay)
        ended = started + timedelta(seconds=ran)
        world.run(
            StateType.COMPLETED, deployment=dep, scheduled=scheduled, started=started, ended=ended
        )
    [duration] = world.evaluate(metric(name="duration", operator=">", threshold=19), T0)
    assert duration.value == pytest.approx(20.0, abs=0.01)
    [late] = world.evaluate(metric(name="lateness", operator=">", threshold=9.9), T0, path="1")
    assert late.value == pytest.approx(10.0, abs=0.01)


def test_match_by_id_and_by_name_pattern(world):
    """An empty match is every deployment; ids select exactly; a name pattern spans kinds."""
    _, queue = world.pool("etl-pool")
    etl_a = world.deployment("etl-a", queue)
    etl_b = world.deployment("etl-b", queue)
    report = world.deployment("report", queue)

    def selected(match: dict[str, Any]) -> list[str]:
        trigger = metric(match, name="late_runs", operator=">=", threshold=0)
        with world.db.session() as session:
            found = evaluate(session, "auto", "0", trigger, T0)
            session.rollback()
        return sorted(c.resource[NAME] for c in found)

    assert selected({}) == ["etl-a", "etl-b", "report"]
    assert selected({ID: f"flowyard.deployment.{etl_b}"}) == ["etl-b"]
    assert selected({ID: [f"flowyard.deployment.{etl_a}", f"flowyard.deployment.{report}"]}) == [
        "etl-a",
        "report",
    ]
    assert selected({NAME: "etl-*"}) == ["etl-a", "etl-b", "etl-pool"]
    assert selected({ID: "flowyard.deployment.*", NAME: "etl-*"}) == ["etl-a", "etl-b"]
    assert selected({ID: "flowyard.deployment.*", NAME: "!etl-*"}) == ["report"]
    assert selected({NAME: "etl_*"}) == []  # SQL wildcards are plain characters


def test_a_deleted_resource_resolves(world):
    """A firing resource that is no longer selected (deleted) resolves and loses its state."""
    _, queue = world.pool("p")
    dep = world.deployment("d", queue)
    world.run(StateType.SCHEDULED, deployment=dep, scheduled=T0 - timedelta(seconds=1))
    trigger = metric(name="queue_depth", operator=">=", threshold=1)
    assert [c.state for c in world.evaluate(trigger, T0)] == ["triggered"]
    with world.db.session() as session:
        session.execute(delete(m.Deployment).where(m.Deployment.id == dep))
    assert world.evaluate(trigger, T0 + timedelta(seconds=5)) == [
        MetricChange("resolved", {ID: f"flowyard.deployment.{dep}"}, 1.0)
    ]
    assert world.states() == []


def test_broad_selections_stay_bounded(world, monkeypatch):
    """Past the IN-list size every run is grouped and the selected kept; past the resource
    cap only the first resources are measured and the others' states are left alone."""
    _, queue = world.pool("p")
    deps = sorted(world.deployment(name, queue) for name in ("a", "b", "c"))
    for dep in deps:
        world.run(StateType.SCHEDULED, deployment=dep, scheduled=T0 - timedelta(seconds=1))
    trigger = metric(
        {ID: [f"flowyard.deployment.{d}" for d in deps[:2]]},
        name="queue_depth",
        operator=">=",
        threshold=1,
    )
    monkeypatch.setattr(metric_triggers, "MAX_IN_LIST", 1)
    fired = world.evaluate(trigger, T0)
    assert sorted(c.resource[ID] for c in fired) == [f"flowyard.deployment.{d}" for d in deps[:2]]

    monkeypatch.setattr(metric_triggers, "MAX_RESOURCES", 1)
    assert world.evaluate(trigger, T0 + timedelta(seconds=5)) == []
    assert [firing for _, firing, _, _ in world.states()] == [True, True]
