"""Schedules end to end: a real server materializes interval runs once each; a worker runs them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess, WorkerProcess
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError
from tests.e2e.conftest import FAST, FLOWS, create_process_pool, deploy_flow
from tests.waiting import wait_until

SCHEDULER_FAST = {**FAST, "FLOWYARD_SCHEDULER_INTERVAL_SECONDS": "0.3"}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "server-home"


def _start(home: Path, port: int | None = None) -> ServerProcess:
    server = ServerProcess(home, port=port, env=SCHEDULER_FAST)
    server.wait_ready()
    return server


@pytest.fixture
def server(home: Path) -> Iterator[ServerProcess]:
    """A server of its own, with a fast scheduler; a test may replace it to restart."""
    process = _start(home)
    try:
        yield process
    finally:
        process.stop()


def _runs(api: FlowyardClient, deployment_id: str) -> list[s.FlowRun]:
    return api.list_flow_runs(deployment_id=deployment_id, limit=500)


def _completed(api: FlowyardClient, deployment_id: str, *, at_least: int) -> list[s.FlowRun]:
    done = [r for r in _runs(api, deployment_id) if r.state.type.value == "COMPLETED"]
    return done if len(done) >= at_least else []


def _assert_one_run_per_slot(runs: list[s.FlowRun]) -> None:
    times = [run.scheduled_time for run in runs]
    assert len(times) == len(set(times)), f"duplicate slots: {sorted(times)}"
    assert all(t.timestamp() % 2 == 0 for t in times), "slots follow the 2 s grid"


def test_interval_schedule_runs_once_per_slot_across_a_restart(server, home, tmp_path):
    """A 2 s interval schedule materializes each slot once, across scheduler passes and a
    server restart; a worker runs them to Completed; pausing deletes the future runs."""
    markers = tmp_path / "markers"
    markers.mkdir()
    with server.client() as api:
        pool = create_process_pool(api, "scheduled")
        schedule = s.ScheduleCreate(kind="interval", expression="2")
        dep = _deploy_marker(api, pool, tmp_path, markers, schedule)
        wait_until(lambda: len(_runs(api, dep.id)) >= 3, timeout=20)
    server.stop()
    restarted = _start(home, port=server.port)
    worker: WorkerProcess | None = None
    try:
        with restarted.client() as api:
            worker = WorkerProcess(restarted.url, pool, tmp_path, env=FAST)
            completed = wait_until(lambda: _completed(api, dep.id, at_least=3), timeout=60)
            _assert_one_run_per_slot(_runs(api, dep.id))
            assert {path.name for path in markers.iterdir()} >= {r.id for r in completed}
            assert all(path.read_text() == "ran\n" for path in markers.iterdir())
            (only,) = api.list_schedules(dep.id)
            api.set_schedule_active(dep.id, only.id, False)
            scheduled = [r for r in _runs(api, dep.id) if r.state.type.value == "SCHEDULED"]
            assert scheduled == []
    finally:
        if worker is not None:
            worker.stop(timeout=30)
        restarted.stop()


def test_invalid_schedule_is_refused_and_nothing_written(server, tmp_path):
    """A deployment with an invalid cron is refused with 422 naming it; nothing is saved."""
    with server.client() as api:
        pool = create_process_pool(api, "refusing")
        bad = s.ScheduleCreate(kind="cron", expression="61 * * * *")
        with pytest.raises(ApiError) as caught:
            _deploy_marker(api, pool, tmp_path, tmp_path, bad)
        assert caught.value.status_code == 422
        assert "61 * * * *" in str(caught.value)
        assert api.list_deployments() == []


def test_late_run_is_named_late_then_still_runs(server, tmp_path):
    """With no worker, a due run becomes Late after its deployment's grace period (seen in
    the API); a worker started later runs it to Completed."""
    markers = tmp_path / "markers"
    markers.mkdir()
    with server.client() as api:
        pool = create_process_pool(api, "latecomers")
        schedule = s.ScheduleCreate(kind="interval", expression="2")
        dep = _deploy_marker(api, pool, tmp_path, markers, schedule, late_after_seconds=0.5)
        late = wait_until(
            lambda: [r for r in _runs(api, dep.id) if r.state.name == "Late"], timeout=30
        )[0]
        history = [state.name for state in api.read_flow_run_history(late.id).states]
        assert history[:2] == ["Scheduled", "Late"]
        worker = WorkerProcess(server.url, pool, tmp_path, env=FAST)
        try:
            wait_until(
                lambda: api.read_flow_run(late.id).state.type.value == "COMPLETED", timeout=60
            )
        finally:
            worker.stop(timeout=30)
        assert (markers / late.id).read_text() == "ran\n"


def test_pausing_a_deployment_stops_its_schedules_until_resumed(server, tmp_path):
    """Pause deletes the runs not started and writes no more; resume schedules again."""
    with server.client() as api:
        pool = create_process_pool(api, "pausing")
        schedule = s.ScheduleCreate(kind="interval", expression="2")
        dep = _deploy_marker(api, pool, tmp_path, tmp_path, schedule)
        wait_until(lambda: _runs(api, dep.id), timeout=20)
        paused = api.set_deployment_paused(dep.id, True)
        assert paused.paused is True
        assert api.read_deployment(dep.id).paused is True
        assert _runs(api, dep.id) == []
        # a paused deployment still takes manual runs
        manual = api.run_deployment(dep.id, s.DeploymentRunRequest())
        assert [r.id for r in _runs(api, dep.id)] == [manual.id]
        assert api.set_deployment_paused(dep.id, False).paused is False
        wait_until(lambda: len(_runs(api, dep.id)) >= 2, timeout=20)


def test_editing_a_schedule_replaces_its_future_runs(server, tmp_path):
    """An edited schedule's unstarted runs are replaced by runs on the new expression."""
    with server.client() as api:
        pool = create_process_pool(api, "editing")
        hourly = s.ScheduleCreate(kind="cron", expression="0 * * * *", timezone="Europe/Berlin")
        dep = _deploy_marker(api, pool, tmp_path, tmp_path, hourly)
        (only,) = api.list_schedules(dep.id)
        assert len(only.next_times) == 5 and all(t.minute == 0 for t in only.next_times)
        wait_until(lambda: _runs(api, dep.id), timeout=20)
        edited = api.update_schedule(dep.id, only.id, s.ScheduleUpdate(expression="30 * * * *"))
        assert edited.kind == "cron" and edited.timezone == "Europe/Berlin"
        assert all(t.minute == 30 for t in edited.next_times)
        runs = wait_until(lambda: _runs(api, dep.id), timeout=20)
        assert all(r.scheduled_time.minute == 30 for r in runs)
        with pytest.raises(ApiError) as caught:
            api.update_schedule(dep.id, only.id, s.ScheduleUpdate(expression="99 * * * *"))
        assert caught.value.status_code == 422 and "99 * * * *" in str(caught.value)
        assert api.list_schedules(dep.id)[0].expression == "30 * * * *"


def test_mistyped_job_variable_is_refused_and_nothing_saved(server, tmp_path):
    """A job variable of the wrong type is a 422 naming it; the deployment is not written."""
    with server.client() as api:
        pool = create_process_pool(api, "typed")
        folder = tmp_path / "flows"
        folder.mkdir()
        (folder / "flows.py").write_text(FLOWS)
        with pytest.raises(ApiError) as caught:
            deploy_flow(api, pool, folder, "marker", job_variables={"env": ["not", "a", "map"]})
        assert caught.value.status_code == 422
        assert "job variable 'env'" in str(caught.value)
        assert api.list_deployments() == []


def _deploy_marker(
    api: FlowyardClient,
    pool: str,
    tmp_path: Path,
    markers: Path,
    schedule: s.ScheduleCreate,
    **fields: object,
) -> s.Deployment:
    """Deploy the test flows' ``marker`` flow, writing into ``markers``, with ``schedule``."""
    folder = tmp_path / "flows"
    folder.mkdir(exist_ok=True)
    (folder / "flows.py").write_text(FLOWS)
    return deploy_flow(
        api,
        pool,
        folder,
        "marker",
        parameters={"folder": str(markers)},
        schedules=[schedule],
        **fields,
    )


def test_schedule_routes_list_add_pause_resume_delete(server, tmp_path):
    """Schedules are listed, added, paused, resumed and deleted through the API."""
    with server.client() as api:
        pool = create_process_pool(api, "routes")
        hourly = s.ScheduleCreate(kind="cron", expression="0 * * * *", timezone="Europe/Berlin")
        dep = _deploy_marker(api, pool, tmp_path, tmp_path, hourly)
        ref = f"{dep.flow_name}/{dep.name}"
        added = api.create_schedule(ref, s.ScheduleCreate(kind="rrule", expression="FREQ=DAILY"))
        assert [x.kind for x in api.list_schedules(ref)] == ["cron", "rrule"]
        assert api.set_schedule_active(ref, added.id, False).active is False
        assert api.set_schedule_active(ref, added.id, True).active is True
        api.delete_schedule(ref, added.id)
        assert [x.kind for x in api.list_schedules(ref)] == ["cron"]
        with pytest.raises(ApiError) as caught:
            api.create_schedule(
                ref, s.ScheduleCreate(kind="cron", expression="* * * * *", timezone="Nowhere/Land")
            )
        assert caught.value.status_code == 422 and "Nowhere/Land" in str(caught.value)
