"""The HTTP API against a real server: pools, queues, deployments, runs, workers, errors."""

from __future__ import annotations

import httpx
import pytest

from flowyard import schemas as s
from flowyard.errors import ApiError
from flowyard.states import StateType


def _status(call) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        call()
    return info.value.status_code, info.value.message


def test_pool_and_queue_lifecycle(api, pool):
    """Queues are created, reprioritised, limited, paused and deleted; the default stays."""
    api.create_work_queue(pool, s.WorkQueueCreate(name="urgent", priority=0, concurrency_limit=2))
    api.create_work_queue(pool, s.WorkQueueCreate(name="bulk", priority=5))
    assert [q.name for q in api.list_work_queues(pool)] == ["urgent", "default", "bulk"]
    api.update_work_queue(pool, "bulk", s.WorkQueueUpdate(priority=0, paused=True))
    bulk = api.read_work_queue(pool, "bulk")
    assert (bulk.priority, bulk.paused) == (0, True)
    cleared = api.update_work_queue(pool, "urgent", s.WorkQueueUpdate(clear_concurrency_limit=True))
    assert cleared.concurrency_limit is None
    api.delete_work_queue(pool, "bulk")
    assert "bulk" not in [q.name for q in api.list_work_queues(pool)]
    code, message = _status(lambda: api.delete_work_queue(pool, "default"))
    assert code == 409 and "default queue" in message


def test_pool_limit_and_pause_round_trip(api, pool):
    """A pool's limit and pause are stored and shown; the status says PAUSED."""
    api.update_work_pool(pool, s.WorkPoolUpdate(concurrency_limit=3, paused=True))
    read = api.read_work_pool(pool)
    assert (read.concurrency_limit, read.paused, read.status) == (3, True, "PAUSED")
    api.update_work_pool(pool, s.WorkPoolUpdate(clear_concurrency_limit=True, paused=False))
    read = api.read_work_pool(pool)
    assert (read.concurrency_limit, read.paused, read.status) == (None, False, "NOT_READY")


def test_duplicate_names_conflict(api, pool):
    """A second pool or queue with a taken name is a 409 naming it."""
    code, message = _status(lambda: api.create_work_pool(s.WorkPoolCreate(name=pool)))
    assert code == 409 and pool in message
    code, _ = _status(lambda: api.create_work_queue(pool, s.WorkQueueCreate(name="default")))
    assert code == 409


def test_unknown_objects_are_404_with_one_line(api, pool):
    """Unknown pool, queue, deployment and run each answer 404 with a one-line message."""
    calls = [
        lambda: api.read_work_pool("no-such-pool"),
        lambda: api.read_work_queue(pool, "no-such-queue"),
        lambda: api.read_deployment("No/such"),
        lambda: api.read_flow_run("00000000-0000-0000-0000-000000000000"),
        lambda: api.claim("no-such-pool", s.ClaimRequest(worker_name="w")),
    ]
    for call in calls:
        code, message = _status(call)
        assert code == 404 and "not found" in message and "\n" not in message


def test_deploying_to_an_unknown_queue_or_with_bad_job_variables_fails(api, deploy):
    """Deployments are checked: unknown queue → 404, unknown job variable → 422."""
    code, _ = _status(lambda: deploy("noop", name="q", queue_name="nowhere"))
    assert code == 404
    code, message = _status(lambda: deploy("noop", name="jv", job_variables={"imagee": "x"}))
    assert code == 422 and "imagee" in message


def test_unknown_and_missing_parameters_are_refused(api, deploy):
    """Unknown and missing required parameters are 422s that name the parameter."""
    dep = deploy("marker")
    code, message = _status(lambda: api.run_deployment(dep.id, s.DeploymentRunRequest()))
    assert code == 422 and "'folder'" in message and "required" in message
    params = {"folder": "/tmp", "colour": "red"}
    code, message = _status(
        lambda: api.run_deployment(dep.id, s.DeploymentRunRequest(parameters=params))
    )
    assert code == 422 and "'colour'" in message


def test_run_filters_and_prefix_lookup(api, deploy, pool):
    """Runs filter by state and pool, and are found by a unique id prefix."""
    dep = deploy("noop")
    run = api.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": 4}))
    assert run.parameters == {"n": 4} and run.state.type is StateType.SCHEDULED
    assert api.read_flow_run(run.id[:8]).id == run.id
    scheduled = api.list_flow_runs(state="SCHEDULED", pool=pool)
    assert run.id in [r.id for r in scheduled]
    assert run.id not in [r.id for r in api.list_flow_runs(state="COMPLETED", pool=pool)]
    code, message = _status(lambda: api.list_flow_runs(state="DONE"))
    assert code == 422 and "unknown state" in message


def test_illegal_transition_is_refused_not_applied(api, deploy):
    """Completing a Scheduled run is refused; the run stays Scheduled."""
    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest())
    result = api.set_flow_run_state(run.id, s.StateChange(type=StateType.COMPLETED))
    assert not result.accepted and result.state.type is StateType.SCHEDULED
    assert api.read_flow_run(run.id).state.type is StateType.SCHEDULED


def test_heartbeat_makes_the_worker_online_and_the_pool_ready(api, pool):
    """A heartbeat registers the worker ONLINE and the pool READY."""
    api.worker_heartbeat(pool, s.WorkerHeartbeat(worker_name="w-1"))
    [worker] = api.list_workers(pool)
    assert (worker.name, worker.status) == ("w-1", "ONLINE")
    assert api.read_work_pool(pool).status == "READY"


def test_a_goodbye_beat_makes_the_worker_offline_at_once(api, pool):
    """A beat with ``stopping`` (a worker's graceful stop) is OFFLINE and NOT_READY at once;
    a later beat makes it ONLINE again."""
    api.worker_heartbeat(pool, s.WorkerHeartbeat(worker_name="w-bye"))
    api.worker_heartbeat(pool, s.WorkerHeartbeat(worker_name="w-bye", stopping=True))
    [worker] = api.list_workers(pool)
    assert (worker.name, worker.status) == ("w-bye", "OFFLINE")
    assert api.read_work_pool(pool).status == "NOT_READY"
    api.worker_heartbeat(pool, s.WorkerHeartbeat(worker_name="w-bye"))
    assert [w.status for w in api.list_workers(pool)] == ["ONLINE"]


def test_claim_long_poll_returns_a_run_enqueued_while_waiting(server, api, deploy, pool):
    """A claim waiting on an empty pool gets a run created meanwhile, well before its wait ends."""
    import threading

    dep = deploy("noop")
    got: list[s.ClaimedRun] = []
    waiting = threading.Thread(
        target=lambda: got.extend(api.claim(pool, s.ClaimRequest(worker_name="w", wait=20)))
    )
    waiting.start()
    with server.client() as other:
        run = other.run_deployment(dep.id, s.DeploymentRunRequest())
    waiting.join(timeout=15)
    assert not waiting.is_alive(), "the long-poll did not return when a run arrived"
    assert [c.run.id for c in got] == [run.id]
    assert got[0].deployment.entrypoint == "flows.py:noop" and got[0].base_job_template


def test_malformed_body_is_a_422_not_a_trace(server):
    """A body of the wrong shape is a 422 in the published shape, naming the field."""
    response = httpx.post(f"{server.url}/api/work_pools", json={"name": 3})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "name"] and "Traceback" not in response.text


def test_deleting_a_deployment_keeps_its_finished_runs_and_drops_its_waiting_ones(
    api, pool, deploy
):
    """DELETE removes the deployment and its not-started runs (unqueued); a finished run
    stays, without it; a run in flight makes the delete a 409 that loses nothing."""
    dep = deploy("noop", name="to-delete")
    done = api.run_deployment(dep.id, s.DeploymentRunRequest())
    api.set_flow_run_state(done.id, s.StateChange(type=StateType.COMPLETED, force=True))
    busy = api.run_deployment(dep.id, s.DeploymentRunRequest())
    api.set_flow_run_state(busy.id, s.StateChange(type=StateType.RUNNING, force=True))
    with pytest.raises(ApiError) as refused:
        api.delete_deployment(dep.id)
    assert refused.value.status_code == 409 and "in flight" in str(refused.value)
    api.set_flow_run_state(busy.id, s.StateChange(type=StateType.CANCELLED, force=True))
    waiting = api.run_deployment(dep.id, s.DeploymentRunRequest())
    api.delete_deployment(dep.id)
    with pytest.raises(ApiError) as gone:
        api.read_deployment(dep.id)
    assert gone.value.status_code == 404
    assert api.read_flow_run(done.id).deployment_id is None
    with pytest.raises(ApiError) as dropped:
        api.read_flow_run(waiting.id)
    assert dropped.value.status_code == 404


def test_health_answers_at_the_root_too(server):
    """Probes and load balancers look at /health: it answers like /api/health."""
    for path in ("/health", "/api/health"):
        response = httpx.get(f"{server.url}{path}")
        assert response.status_code == 200, path
        assert response.json() == {"status": "ok"}


def test_a_schedule_is_found_by_the_prefix_listings_show(api, deploy):
    """A schedule's 8-character prefix pauses and deletes it; a prefix of no schedule of the
    deployment, or under 4 characters, is a 404 naming it."""
    dep = deploy("noop", name="prefixed")
    made = api.create_schedule(dep.id, s.ScheduleCreate(kind="interval", expression="3600"))
    assert api.set_schedule_active(dep.id, made.id[:8], False).id == made.id
    assert [x.active for x in api.list_schedules(dep.id)] == [False]
    for wrong in (made.id[:3], "ffffffff-none"):
        code, message = _status(lambda wrong=wrong: api.delete_schedule(dep.id, wrong))
        assert code == 404 and wrong in message
    api.delete_schedule(dep.id, made.id[:8])
    assert api.list_schedules(dep.id) == []
