"""A background task run's state set through the API keeps its Redis queue in step."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from flowyard.pools import ManagedRedis, keys
from flowyard.states import StateType
from tests.e2e.conftest import FAST
from tests.servers import running_server


@pytest.fixture(scope="module")
def own_server(
    redis_server: ManagedRedis, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A server on the session's Redis, so that the test can read the queue's keys."""
    home = tmp_path_factory.mktemp("bg-states-home")
    with running_server(home, {**FAST, "FLOWYARD_REDIS_URL": redis_server.url}) as process:
        yield process


@pytest.fixture
def api(own_server: ServerProcess) -> Iterator[FlowyardClient]:
    with own_server.client() as client:
        yield client


@pytest.fixture
def rdb(redis_server: ManagedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        yield client
    finally:
        client.close()


def _scheduled(api: FlowyardClient) -> s.TaskRun:
    key = f"states.task_{uuid.uuid4().hex[:8]}"
    return api.create_background_task_run(s.BackgroundTaskRunCreate(task_key=key, name="one"))


def _claim(api: FlowyardClient, run: s.TaskRun) -> s.ClaimedTaskRun:
    body = s.TaskWorkerClaim(task_keys=[run.task_key], worker_name="w", max_runs=1, wait=5)
    [claimed] = api.claim_background_task_runs(body)
    assert claimed.run.id == run.id
    return claimed


def test_a_scheduled_run_cancelled_through_the_api_leaves_its_ready_queue(api, rdb):
    """Cancelling a Scheduled run removes it from its task's ready queue at once, so no
    task worker can take it; the claim finds nothing."""
    run = _scheduled(api)
    assert rdb.zscore(keys.task_ready(run.task_key), run.id) is not None
    done = api.set_task_run_state(run.id, s.TaskRunUpdate(state=StateType.CANCELLED))
    assert done.state_type is StateType.CANCELLED
    assert rdb.zscore(keys.task_ready(run.task_key), run.id) is None
    body = s.TaskWorkerClaim(task_keys=[run.task_key], worker_name="w", max_runs=1, wait=0)
    assert api.claim_background_task_runs(body) == []
    assert api.read_task_run(run.id).state_type is StateType.CANCELLED


def test_a_claimed_run_set_final_through_the_api_ends_its_claim(api, rdb):
    """A run a task worker holds, failed through the API: its lease and claim leave Redis,
    the worker's heartbeat learns it holds it no more, and its late report is refused."""
    run = _scheduled(api)
    claimed = _claim(api, run)
    assert rdb.hexists(keys.TASK_CLAIMS, run.id)
    api.set_task_run_state(run.id, s.TaskRunUpdate(state=StateType.FAILED, message="by hand"))
    assert not rdb.hexists(keys.TASK_CLAIMS, run.id)
    assert rdb.zscore(keys.TASK_LEASES, run.id) is None
    beat = s.TaskWorkerHeartbeat(
        worker_name="w", runs=[s.HeldTaskRun(id=run.id, token=claimed.token)]
    )
    assert api.task_worker_heartbeat(beat) == []
    late = s.BackgroundStateReport(token=claimed.token, state=StateType.COMPLETED)
    with pytest.raises(ApiError) as refused:
        api.report_background_task_run(run.id, late)
    assert refused.value.status_code == 409
    assert api.read_task_run(run.id).message == "by hand"


def test_a_final_run_set_scheduled_is_queued_again_and_claimable(api, rdb):
    """Setting a cancelled run back to Scheduled queues it at once; a task worker claims
    it with a fresh token."""
    run = _scheduled(api)
    api.set_task_run_state(run.id, s.TaskRunUpdate(state=StateType.CANCELLED))
    again = api.set_task_run_state(run.id, s.TaskRunUpdate(state=StateType.SCHEDULED))
    assert again.state_type is StateType.SCHEDULED and again.end_time is None
    assert rdb.zscore(keys.task_ready(run.task_key), run.id) is not None
    assert _claim(api, run).run.state_type is StateType.PENDING


@pytest.mark.parametrize("state", [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING])
def test_states_only_a_claim_gives_are_refused(api, rdb, state):
    """Pending, Running (and Cancelling) come only from a task worker's claim: the route
    refuses them (409, naming the states it takes) and the run stays queued."""
    run = _scheduled(api)
    with pytest.raises(ApiError) as refused:
        api.set_task_run_state(run.id, s.TaskRunUpdate(state=state))
    assert refused.value.status_code == 409
    assert "Scheduled or a final state" in str(refused.value)
    assert api.read_task_run(run.id).state_type is StateType.SCHEDULED
    assert rdb.zscore(keys.task_ready(run.task_key), run.id) is not None


def test_task_run_records_never_overwrite_a_background_run(api, rdb, tmp_path: Path):
    """A bulk record naming a background run's id (with some flow run) changes nothing:
    the run stays Scheduled, queued, with its own name."""
    run = _scheduled(api)
    flow_run = api.create_flow_run(s.FlowRunCreate(flow_name="records-owner"))
    record = {
        "id": run.id,
        "flow_run_id": flow_run.id,
        "name": "hijacked",
        "task_key": run.task_key,
        "state": "COMPLETED",
        "parameters": {"x": 1},
    }
    api.upsert_task_runs([record])
    after = api.read_task_run(run.id)
    assert (after.name, after.state_type, after.flow_run_id) == ("one", StateType.SCHEDULED, None)
    assert rdb.zscore(keys.task_ready(run.task_key), run.id) is not None


@pytest.mark.parametrize("state", [StateType.SCHEDULED, StateType.PENDING, StateType.PAUSED])
def test_a_task_worker_reports_only_running_or_a_final_state(api, rdb, state):
    """A report of any other state is refused (409): the run stays Pending and its claim
    stays in Redis, in step with the store."""
    run = _scheduled(api)
    claimed = _claim(api, run)
    with pytest.raises(ApiError) as refused:
        api.report_background_task_run(
            run.id, s.BackgroundStateReport(token=claimed.token, state=state)
        )
    assert refused.value.status_code == 409
    assert api.read_task_run(run.id).state_type is StateType.PENDING
    assert rdb.hexists(keys.TASK_CLAIMS, run.id)
