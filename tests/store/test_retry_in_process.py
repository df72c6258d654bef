"""In the store: a flow retry waiting in its engine keeps its claim; a crash retry drops it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowyard.orchestrator import runs
from flowyard.states import StateType
from flowyard.store import models as m


def _claimed_running_run(session, *, crash_retries: int = 0) -> m.FlowRun:
    pool = m.WorkPool(name="local", type="process")
    queue = m.WorkQueue(name="default", priority=1)
    pool.queues.append(queue)
    flow = m.Flow(name="f")
    deployment = m.Deployment(
        name="d", flow=flow, queue=queue, entrypoint="flows.py:f", crash_retries=crash_retries
    )
    session.add_all([pool, deployment])
    run = runs.new_run(
        session, flow=flow, deployment=deployment, queue=queue, now=datetime.now(UTC)
    )
    session.flush()
    run.claim_token, run.worker_name, run.infrastructure_id = "tok", "w1", "host:1"
    for step in (StateType.PENDING, StateType.RUNNING):
        runs.set_state(session, run, step, now=datetime.now(UTC), token="tok")
    return run


def test_awaiting_a_retry_in_process_keeps_the_claim_and_touches_no_queue(database):
    """Running → AwaitingRetry by the engine: claim, worker and infrastructure stay, the
    retry time is recorded, and Redis is told nothing (the slot stays held)."""
    now = datetime.now(UTC)
    when = now + timedelta(seconds=30)
    with database.session() as session:
        run = _claimed_running_run(session)
        decision, effect = runs.set_state(
            session, run, StateType.SCHEDULED, now=now, token="tok", message="boom",
            scheduled_time=when,
        )  # fmt: skip
        assert decision.accepted and effect is None
        assert (run.state_name, run.state_message) == ("AwaitingRetry", "boom")
        assert (run.claim_token, run.worker_name, run.infrastructure_id) == ("tok", "w1", "host:1")
        assert run.scheduled_time == when and runs.waits_in_process(run)
        decision, effect = runs.set_state(session, run, StateType.RUNNING, now=now, token="tok")
        assert decision.accepted and effect is None
        assert run.state_name == "Running" and not runs.waits_in_process(run)


def test_a_crash_retry_still_returns_the_run_to_its_queue(database):
    """A crash with crash_retries left: AwaitingRetry without a claim, queued again."""
    with database.session() as session:
        run = _claimed_running_run(session, crash_retries=1)
        decision, effect = runs.set_state(
            session, run, StateType.CRASHED, now=datetime.now(UTC), token="tok"
        )
        assert decision.accepted
        assert run.state_name == "AwaitingRetry" and run.claim_token is None
        assert not runs.waits_in_process(run)
        assert effect is not None and effect.release and effect.enqueue_at is not None
