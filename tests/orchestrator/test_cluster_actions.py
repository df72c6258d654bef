"""Automation actions on a real Redis Cluster go through Flowyard's own small queue (RQ
needs one standalone Redis): run, retried after their interval, swept when lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowyard.orchestrator.automations.cluster_actions import DUE, ClusterActionQueue
from tests.orchestrator.automation_harness import Api, receiving, running_app
from tests.waiting import wait_until


def _slack_block(api: Api, url: str) -> None:
    api.post("/api/blocks", {"type": "slack-webhook", "name": "ops", "data": {"url": url}})


def test_a_failing_receiver_is_retried_through_the_cluster_queue(tmp_path, redis_cluster):
    """Four 500s use up the delivery's own tries; the queue runs a second attempt after the
    retry interval and the row ends succeeded."""
    redis_cluster.flush()
    with running_app(tmp_path, redis_cluster.url) as api, receiving([500] * 4 + [200]) as rx:
        assert isinstance(api.orch.action_queue, ClusterActionQueue)
        _slack_block(api, rx.url("/services/T0/B0/SECRETTOKEN123"))
        action = {"type": "send-notification", "block": "slack-webhook/ops"}
        [action_id] = api.fire([action], None, fired=None)
        api.orch.action_queue.enqueue([action_id])

        row = wait_until(lambda: api.finished(action_id), timeout=20)
        assert (row.status, row.attempts, row.error) == ("succeeded", 2, None)
        assert rx.count() == 5


def test_an_action_out_of_retries_ends_failed(tmp_path, redis_cluster):
    """After the last retry the row is failed with its error and an event, and leaves the queue."""
    redis_cluster.flush()
    overrides = {"automation_action_retries": 1, "automation_action_retry_intervals": [0]}
    with running_app(tmp_path, redis_cluster.url, **overrides) as api, receiving([500]) as rx:
        _slack_block(api, rx.url("/services/T0/B0/SECRETTOKEN123"))
        action = {"type": "send-notification", "block": "slack-webhook/ops"}
        [action_id] = api.fire([action], None, fired=None)
        api.orch.action_queue.enqueue([action_id])

        row = wait_until(lambda: api.finished(action_id), timeout=20)
        assert (row.status, row.attempts) == ("failed", 2)
        assert row.error and "answered 500" in row.error and "SECRETTOKEN123" not in row.error
        assert [e.payload["attempts"] for e in api.events("flowyard.automation.action.failed")] == [
            2
        ]
        assert api.orch.action_queue.redis.zcard(DUE) == 0


def test_the_sweep_queues_an_action_redis_does_not_have(tmp_path, redis_cluster):
    """A pending row past its grace in neither sorted set (never queued, or lost with
    Redis's data) is queued again and runs; a fresh one is left alone."""
    redis_cluster.flush()
    with running_app(tmp_path, redis_cluster.url) as api:
        old = datetime.now(UTC) - timedelta(minutes=1)
        [stale] = api.fire([{"type": "do-nothing"}], None, fired=old)
        [fresh] = api.fire([{"type": "do-nothing"}], None, fired=None)

        assert api.orch.action_queue.requeue_stale() == 1
        assert wait_until(lambda: api.finished(stale)).status == "succeeded"
        assert api.action(fresh).status == "pending"
        assert api.orch.action_queue.requeue_stale() == 0
