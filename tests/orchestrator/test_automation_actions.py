"""Automation actions run as RQ jobs by the worker thread of a real app, on a real Redis."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from rq.serializers import JSONSerializer

from flowyard.errors import InvalidInput, NotFound, NotificationError, QueueUnavailable
from flowyard.orchestrator.automations.action_queue import QUEUE, job_id
from flowyard.orchestrator.automations.actions import is_transient
from flowyard.orchestrator.automations.targets import resource_of
from flowyard.orchestrator.automations.templates import render_value
from flowyard.pools import ManagedRedis
from flowyard.store import models as m
from tests.orchestrator.automation_harness import Api, receiving, running_app
from tests.waiting import wait_until


def _event(
    name: str,
    resource: dict[str, str],
    related: list[dict[str, str]] | None = None,
    **payload: Any,
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": name,
        "resource": resource,
        "related": related or [],
        "payload": payload,
    }


ID, NAME, ROLE = "flowyard.resource.id", "flowyard.resource.name", "flowyard.resource.role"


def _run_event(run: dict[str, Any], dep: dict[str, Any], pool: dict[str, Any]) -> dict[str, Any]:
    """An event about ``run``, as the server writes one: its deployment and pool related."""
    return _event(
        "flowyard.flow-run.Late",
        {ID: f"flowyard.flow-run.{run['id']}", NAME: run["name"]},
        [
            {ID: f"flowyard.deployment.{dep['id']}", ROLE: "deployment"},
            {ID: f"flowyard.work-pool.{pool['id']}", NAME: pool["name"], ROLE: "work-pool"},
        ],
    )


def _done(api: Api, action_id: str, timeout: float = 15.0):
    return wait_until(lambda: api.finished(action_id), timeout=timeout)


def test_run_deployment_passes_parameters_templated_from_the_event_with_their_types(
    tmp_path, redis_url
):
    """``{{ expr }}`` alone keeps its type (3, a list, a dict); other strings are text."""
    with running_app(tmp_path, redis_url) as api:
        api.pool()
        dep = api.deployment()
        event = _event(
            "sensor.reading",
            {ID: "sensor.7", NAME: "boiler"},
            count=3,
            names=["a", "b"],
        )
        action = {
            "type": "run-deployment",
            "deployment": "etl/nightly",
            "parameters": {
                "count": "{{ event.payload.count }}",
                "names": "{{ event.payload.names }}",
                "label": "for {{ event.resource['flowyard.resource.name'] }}",
                "nested": {"double": "{{ event.payload.count * 2 }}", "kept": 1.5},
            },
        }
        [action_id] = api.fire([action], event, fired=None)
        api.orch.action_queue.enqueue([action_id])

        row = _done(api, action_id)
        assert (row.status, row.attempts, row.error) == ("succeeded", 1, None)
        assert row.enqueued is not None and row.finished is not None
        [executed] = api.events("flowyard.automation.action.executed")
        run = api.get(f"/api/flow_runs/{executed.payload['flow_run_id']}")
        assert run["deployment_id"] == dep["id"]
        assert run["parameters"] == {
            "count": 3,
            "names": ["a", "b"],
            "label": "for boiler",
            "nested": {"double": 6, "kept": 1.5},
        }
        assert executed.payload["action_type"] == "run-deployment"
        assert executed.payload["action_index"] == 0


def test_pause_deployment_and_work_pool_are_inferred_from_the_event(tmp_path, redis_url):
    """The deployment and the pool the run's event relates are the ones paused, with the
    API's own events."""
    with running_app(tmp_path, redis_url) as api:
        pool = api.pool()
        dep = api.deployment()
        run = api.post("/api/deployments/etl/nightly/runs", {})
        actions = [
            {"type": "pause-deployment", "source": "inferred"},
            {"type": "pause-work-pool", "source": "inferred"},
        ]
        ids = api.fire(actions, _run_event(run, dep, pool), fired=None)
        api.orch.action_queue.enqueue(ids)

        assert [_done(api, i).status for i in ids] == ["succeeded", "succeeded"]
        assert api.get("/api/deployments/etl/nightly")["paused"] is True
        assert api.get("/api/work_pools/etl-pool")["paused"] is True
        assert [e.resource_id for e in api.events("flowyard.deployment.paused")] == [
            f"flowyard.deployment.{dep['id']}"
        ]
        assert len(api.events("flowyard.work-pool.paused")) == 1


def test_cancel_flow_run_cancels_the_run_of_the_event(tmp_path, redis_url):
    """A Scheduled run is Cancelled at once, as by the API's cancel."""
    with running_app(tmp_path, redis_url) as api:
        pool = api.pool()
        dep = api.deployment()
        run = api.post("/api/deployments/etl/nightly/runs", {})
        [action_id] = api.fire(
            [{"type": "cancel-flow-run"}], _run_event(run, dep, pool), fired=None
        )
        api.orch.action_queue.enqueue([action_id])

        assert _done(api, action_id).status == "succeeded"
        assert api.get(f"/api/flow_runs/{run['id']}")["state"]["type"] == "CANCELLED"


def test_state_queue_automation_and_webhook_actions_act_through_the_api(tmp_path, redis_url):
    """A run forced to Failed with a templated message, a queue and an automation paused,
    and a webhook called with the action's payload template."""
    with running_app(tmp_path, redis_url) as api, receiving([200]) as receiver:
        pool = api.pool()
        dep = api.deployment()
        run = api.post("/api/deployments/etl/nightly/runs", {})
        [target] = api.fire([{"type": "do-nothing"}], None, fired=None)
        target_name = _automation_of(api, target).name
        api.post("/api/blocks", {
            "type": "webhook", "name": "hook", "data": {"url": receiver.url("/hook/SECRET99")}
        })  # fmt: skip
        by_name = "by {{ automation.name }}"
        run_id = '{"run": {{ flow_run.id | tojson }}}'
        actions = [
            {"type": "change-flow-run-state", "state": "FAILED", "message": by_name},
            {"type": "pause-work-queue", "work_queue": "etl-pool/default"},
            {"type": "pause-automation", "automation": target_name},
            {"type": "call-webhook", "block": "hook", "payload": run_id},
        ]
        ids = api.fire(actions, _run_event(run, dep, pool), fired=None)
        api.orch.action_queue.enqueue(ids)

        assert [_done(api, i).status for i in ids] == ["succeeded"] * 4
        name = _automation_of(api, ids[0]).name
        state = api.get(f"/api/flow_runs/{run['id']}")["state"]
        assert (state["type"], state["message"]) == ("FAILED", f"by {name}")
        assert api.get("/api/work_pools/etl-pool/queues/default")["paused"] is True
        assert _automation_of(api, target).enabled is False
        assert [e.resource_name for e in api.events("flowyard.automation.paused")] == [target_name]
        assert [r["json"] for r in receiver.received] == [{"run": run["id"]}]


def _automation_of(api: Api, action_id: str) -> m.Automation:
    with api.orch.db.read() as session:
        automation = session.get(m.Automation, api.action(action_id).automation_id)
        assert automation is not None
        return automation


def test_the_led_sweep_runs_as_a_service(tmp_path, redis_url):
    """Wired into the app: an action left unqueued is run without anyone calling enqueue."""
    fast = {"reconcile_interval_seconds": 0.2, "automation_action_requeue_after_seconds": 0.5}
    with running_app(tmp_path, redis_url, **fast) as api:
        [action_id] = api.fire([{"type": "do-nothing"}], None, fired=None)
        assert _done(api, action_id).status == "succeeded"


def _slack_block(api: Api, url: str) -> None:
    api.post("/api/blocks", {"type": "slack-webhook", "name": "ops", "data": {"url": url}})


def test_send_notification_posts_the_rendered_message(tmp_path, redis_url):
    """The receiver gets Slack's JSON with the subject and body rendered from the event."""
    with running_app(tmp_path, redis_url) as api, receiving([200]) as receiver:
        _slack_block(api, receiver.url("/services/T0/B0/SECRETTOKEN123"))
        action = {
            "type": "send-notification",
            "block": "slack-webhook/ops",
            "subject": "{{ automation.name }}: {{ event.event }}",
            "body": "{{ event.payload.reading }} degrees",
        }
        event = _event("sensor.hot", {ID: "sensor.7"}, reading=99)
        [action_id] = api.fire([action], event, fired=None)
        api.orch.action_queue.enqueue([action_id])

        assert _done(api, action_id).status == "succeeded"
        automation = api.events("flowyard.automation.triggered")[0].resource_name
        assert receiver.received == [
            {
                "method": "POST",
                "path": "/services/T0/B0/SECRETTOKEN123",
                "content_type": "application/json",
                "json": {"text": f"*{automation}: sensor.hot*\n99 degrees"},
            }
        ]


@pytest.mark.parametrize(
    ("statuses", "attempts"),
    [
        ([500, 500, 200], 1),  # the delivery's own quick tries absorb two 500s
        ([500] * 4 + [200], 2),  # four use them up: RQ's retry, through its scheduler
    ],
)
def test_a_failing_receiver_is_retried_until_it_answers(tmp_path, redis_url, statuses, attempts):
    """Each request the receiver saw was a try; the row ends succeeded, its error cleared."""
    with running_app(tmp_path, redis_url) as api, receiving(statuses) as receiver:
        _slack_block(api, receiver.url("/services/T0/B0/SECRETTOKEN123"))
        action = {"type": "send-notification", "block": "slack-webhook/ops"}
        [action_id] = api.fire([action], None, fired=None)
        api.orch.action_queue.enqueue([action_id])

        if attempts > 1:  # between the tries: pending again, with the first one's error
            between = wait_until(lambda: _with_error(api, action_id))
            assert between.status == "pending" and "answered 500" in (between.error or "")
        row = _done(api, action_id)
        assert (row.status, row.attempts, row.error) == ("succeeded", attempts, None)
        assert receiver.count() == len(statuses)
        assert len({str(r["json"]) for r in receiver.received}) == 1  # the same message
        assert not api.events("flowyard.automation.action.failed")
        [executed] = api.events("flowyard.automation.action.executed")
        assert executed.payload["service"] == "Slack"


def _with_error(api: Api, action_id: str) -> m.AutomationAction | None:
    row = api.action(action_id)
    return row if row.error else None


def test_a_receiver_that_always_fails_ends_failed_with_its_error(tmp_path, redis_url):
    """After the last retry the row is failed with the error (no secret in it), an event
    says so, and RQ keeps the job in its failed registry."""
    overrides = {"automation_action_retries": 1, "automation_action_retry_intervals": [0]}
    with running_app(tmp_path, redis_url, **overrides) as api, receiving([500]) as receiver:
        _slack_block(api, receiver.url("/services/T0/B0/SECRETTOKEN123"))
        action = {"type": "send-notification", "block": "slack-webhook/ops"}
        [action_id] = api.fire([action], None, fired=None)
        api.orch.action_queue.enqueue([action_id])

        row = _done(api, action_id)
        assert (row.status, row.attempts) == ("failed", 2)
        assert row.error and "answered 500" in row.error
        assert "SECRETTOKEN123" not in row.error
        [failed] = api.events("flowyard.automation.action.failed")
        assert failed.payload["error"] == row.error
        assert failed.payload["attempts"] == 2
        queue = Queue(QUEUE, connection=redis.Redis.from_url(redis_url), serializer=JSONSerializer)
        failed_ids = wait_until(lambda: queue.failed_job_registry.get_job_ids())
        assert failed_ids == [job_id(action_id)]


def test_an_action_on_a_deleted_deployment_fails_at_once(tmp_path, redis_url):
    """NotFound cannot pass with retries: one attempt, a clear error."""
    with running_app(tmp_path, redis_url) as api:
        api.pool()
        dep = api.deployment()
        [action_id] = api.fire(
            [{"type": "run-deployment", "deployment": "etl/nightly"}], None, fired=None
        )
        with api.orch.db.session() as session:
            session.delete(session.get(m.Deployment, dep["id"]))
        api.orch.action_queue.enqueue([action_id])

        row = _done(api, action_id)
        assert (row.status, row.attempts) == ("failed", 1)
        assert row.error == "deployment 'etl/nightly' not found"
        registry = api.orch.action_queue.queue.failed_job_registry
        assert wait_until(registry.get_job_ids) == [job_id(action_id)]  # not retried by RQ


def test_a_job_enqueued_twice_runs_once(tmp_path, redis_url):
    """The job id is the row's: the second enqueue is the same job; one flow run."""
    with running_app(tmp_path, redis_url) as api:
        api.pool()
        api.deployment()
        [action_id] = api.fire(
            [{"type": "run-deployment", "deployment": "etl/nightly"}], None, fired=None
        )
        api.orch.action_queue.enqueue([action_id])
        api.orch.action_queue.enqueue([action_id])
        queue = api.orch.action_queue.queue
        assert queue.get_job_ids().count(job_id(action_id)) <= 1

        row = _done(api, action_id)
        api.orch.action_queue.enqueue([action_id])  # after it ran: still the same job
        assert (row.status, row.attempts) == ("succeeded", 1)
        wait_until(lambda: queue.count == 0 and not queue.started_job_registry.count)
        assert len(api.get("/api/flow_runs")) == 1
        assert api.action(action_id).attempts == 1


def test_the_sweep_queues_a_pending_action_that_was_never_queued(tmp_path, redis_url):
    """The process stopped between the firing's commit and enqueue: the sweep queues it."""
    with running_app(tmp_path, redis_url) as api:
        old = datetime.now(UTC) - timedelta(minutes=1)
        [stale] = api.fire([{"type": "do-nothing"}], None, fired=old)
        [fresh] = api.fire([{"type": "do-nothing"}], None, fired=None)

        assert api.orch.action_queue.requeue_stale() == 1
        assert _done(api, stale).status == "succeeded"
        assert api.action(fresh).enqueued is None  # within the grace period: left alone
        assert api.orch.action_queue.requeue_stale() == 0  # a finished row is left alone


def test_the_sweep_queues_again_an_action_whose_job_redis_lost(tmp_path, redis_url):
    """A pending row marked queued, whose job is gone, is queued again."""
    with running_app(tmp_path, redis_url) as api:
        old = datetime.now(UTC) - timedelta(minutes=1)
        [action_id] = api.fire([{"type": "do-nothing"}], None, fired=old)
        with api.orch.db.session() as session:
            session.get(m.AutomationAction, action_id).enqueued = old

        assert api.orch.action_queue.requeue_stale() == 1
        assert _done(api, action_id).status == "succeeded"


# -- pure parts ------------------------------------------------------------------------------

VALUES = {"event": {"payload": {"n": 2, "tags": ["x"], "name": "boiler"}}, "labels": {}}


def test_a_lone_expression_keeps_its_type_and_other_strings_render_as_text():
    """Numbers, lists and dicts pass through typed, nested values too; missing is None."""
    value = {
        "n": "{{ event.payload.n }}",
        "tags": " {{ event.payload.tags }} ",
        "deep": [{"sum": "{{ event.payload.n + 1 }}"}, "{{ event.payload }}"],
        "text": "{{ event.payload.name }}-{{ event.payload.n }}",
        "missing": "{{ event.payload.nope }}",
        "plain": 7,
    }
    assert render_value(value, VALUES, "parameters") == {
        "n": 2,
        "tags": ["x"],
        "deep": [{"sum": 3}, {"n": 2, "tags": ["x"], "name": "boiler"}],
        "text": "boiler-2",
        "missing": None,
        "plain": 7,
    }


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "parameters.x: template refused"),
        ("{{ 1 / 0 }}", "parameters.x: template error: ZeroDivisionError"),
        ("{{ event.payload.n ", "parameters.x: template error"),
        ("{{ range(3) }}", "parameters.x: the template's value is not JSON"),
    ],
)
def test_a_bad_template_is_invalid_input_naming_where(template, message):
    """Such an action fails at once: no retry makes a template good."""
    with pytest.raises(InvalidInput) as raised:
        render_value({"x": template}, VALUES, "parameters")
    assert str(raised.value).startswith(message)


def test_the_inferred_resource_is_the_events_own_else_a_related_one_of_that_role():
    event = {
        "resource": {ID: "flowyard.flow-run.r1"},
        "related": [
            {ID: "flowyard.flow.f1", ROLE: "flow"},
            {ID: "flowyard.deployment.d1", ROLE: "deployment"},
        ],
    }
    assert resource_of(event, "flow-run") == "r1"
    assert resource_of(event, "deployment") == "d1"
    assert resource_of(event, "work-pool") is None
    assert resource_of(None, "flow-run") is None


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (NotificationError("Slack", 503, "busy"), True),
        (NotificationError("Slack", None, "unreachable"), True),
        (NotificationError("Slack", 404, "no such hook"), False),
        (NotificationError("email", 451, "try later"), True),
        (NotificationError("email", 550, "no such mailbox"), False),
        (QueueUnavailable("redis down"), True),
        (NotFound("deployment 'a/b' not found"), False),
        (InvalidInput("bad"), False),
        (TimeoutError("slow"), True),
        (ConnectionError("reset"), True),
    ],
)
def test_what_is_worth_another_attempt(error, transient):
    assert is_transient(error) is transient


def test_the_action_worker_stops_while_redis_is_away(tmp_path):
    """RQ retries a lost Redis for ever (its poll's reconnect loop) without looking at our
    stop: the server's stop must still end the worker thread (one outlived its server)."""
    redis_server = ManagedRedis(workdir=tmp_path / "redis").start()
    try:
        with running_app(tmp_path, redis_server.url) as api:
            queue = api.orch.action_queue
            threads = list(queue._threads)
            wait_until(lambda: queue._worker is not None and queue._worker.polling_as)
            redis_server.stop()  # the poll in flight fails: RQ starts reconnecting
        for thread in threads:
            thread.join(15)
        assert [t.name for t in threads if t.is_alive()] == []
    finally:
        redis_server.stop()
