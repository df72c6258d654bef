"""Flow runs through real worker processes: limits, no duplicates, failures, crashes, cancel."""

from __future__ import annotations

import pytest

from flowyard import schemas as s
from flowyard.errors import ApiError
from flowyard.states import StateType
from tests.e2e.conftest import run_states
from tests.proc import alive
from tests.waiting import wait_until


def _all_final(api, run_ids, timeout):
    def check():
        states = run_states(api, run_ids)
        return states if all(StateType(v).is_terminal for v in states.values()) else None

    return wait_until(check, timeout=timeout, interval=0.2, message="runs did not all finish")


def _max_overlap(intervals):
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


def test_hundred_runs_with_limit_4_never_exceed_it(api, deploy, start_worker):
    """100 runs through one worker with --limit 4 all complete; never more than 4 at once."""
    dep = deploy("noop")
    run_ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(100)]
    start_worker("--limit", "4")
    states = _all_final(api, run_ids, timeout=240)
    assert set(states.values()) == {"COMPLETED"}
    claimed, running = [], []
    for run_id in run_ids:
        # a run still waiting after the grace period is named Late: slow machines see some
        history = [st for st in api.read_flow_run_history(run_id).states if st.name != "Late"]
        at = {st.type: st.timestamp for st in history}
        assert [st.type for st in history] == [
            StateType.SCHEDULED,
            StateType.PENDING,
            StateType.RUNNING,
            StateType.COMPLETED,
        ]
        claimed.append((at[StateType.PENDING], at[StateType.COMPLETED]))
        running.append((at[StateType.RUNNING], at[StateType.COMPLETED]))
    assert _max_overlap(running) <= 4
    assert _max_overlap(claimed) <= 4


def test_two_workers_never_run_a_run_twice(api, deploy, start_worker, tmp_path):
    """200 runs shared by two workers: each run's marker is written exactly once."""
    markers = tmp_path / "markers"
    markers.mkdir()
    dep = deploy("marker", parameters={"folder": str(markers)})
    run_ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(200)]
    start_worker("--limit", "8")
    start_worker("--limit", "8")
    states = _all_final(api, run_ids, timeout=300)
    assert set(states.values()) == {"COMPLETED"}
    written = {path.name: path.read_text() for path in markers.iterdir()}
    assert set(written) == set(run_ids)
    assert all(text == "ran\n" for text in written.values())
    workers = {api.read_flow_run(run_id).worker_name for run_id in run_ids}
    assert len(workers) == 2, "both workers should have taken part"


@pytest.mark.parametrize(
    ("entrypoint", "named"), [("flows.py:vanished", "vanished"), ("gone.py:noop", "gone.py")]
)
def test_missing_entrypoint_fails_the_run_with_the_reason(
    api, deploy, start_worker, flows_dir, entrypoint, named
):
    """A deployment whose function or file vanished ends Failed, the reason in state and logs."""
    dep = deploy("noop")
    api.create_deployment(
        s.DeploymentCreate(
            name=dep.name,
            flow_name=dep.flow_name,
            entrypoint=entrypoint,
            path=str(flows_dir),
            pool_name=dep.pool_name,
        )
    )
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    start_worker()
    _all_final(api, [run.id], timeout=60)
    final = api.read_flow_run(run.id)
    assert final.state.type is StateType.FAILED
    assert named in final.state.message
    wait_until(lambda: [lg.message for lg in api.read_logs(run.id) if named in lg.message])


def test_flow_exception_fails_with_traceback_in_logs(api, deploy, start_worker):
    """A flow that raises ends Failed; its traceback is in the run's logs."""
    run = api.run_deployment(deploy("fails").id, s.DeploymentRunRequest())
    start_worker()
    _all_final(api, [run.id], timeout=60)
    assert api.read_flow_run(run.id).state.type is StateType.FAILED
    text = "\n".join(lg.message for lg in api.read_logs(run.id))
    assert "Traceback" in text and "ValueError: the data is wrong" in text


def test_process_exit_without_final_state_is_crashed(api, deploy, start_worker):
    """A flow process that dies without reporting is Crashed with its exit code."""
    run = api.run_deployment(deploy("crash").id, s.DeploymentRunRequest())
    start_worker()
    _all_final(api, [run.id], timeout=60)
    final = api.read_flow_run(run.id)
    assert final.state.type is StateType.CRASHED
    assert "code 3" in final.state.message


def test_a_process_that_exits_0_without_a_final_state_is_still_crashed(api, deploy, start_worker):
    """A flow that ends its process with ``os._exit(0)`` looks like an engine that settled
    its run, so its worker reads nothing back; the run's silence (no heartbeat, its claim's
    lease let go) still ends it Crashed, not left Running."""
    run = api.run_deployment(deploy("quits").id, s.DeploymentRunRequest())
    start_worker()
    _all_final(api, [run.id], timeout=90)
    final = api.read_flow_run(run.id)
    assert final.state.type is StateType.CRASHED, final.state


def test_crashed_run_is_rescheduled_up_to_crash_retries(api, deploy, start_worker):
    """With ``crash_retries=2`` a run that crashes every time runs three times in all, then
    stays Crashed; each crash and each reschedule is in its history."""
    run = api.run_deployment(deploy("crash", crash_retries=2).id, s.DeploymentRunRequest())
    start_worker()
    _all_final(api, [run.id], timeout=120)
    history = api.read_flow_run_history(run.id)
    names = [state.name for state in history.states]
    assert history.run.state.type is StateType.CRASHED
    assert names.count("Running") == 3 and names.count("Crashed") == 3
    assert names.count("AwaitingRetry") == 2
    rescheduled = [st.message for st in history.states if st.name == "AwaitingRetry"]
    assert rescheduled == [
        "rescheduled after a crash (1 of 2 allowed)",
        "rescheduled after a crash (2 of 2 allowed)",
    ]


def test_cancel_a_running_run_kills_its_process(api, deploy, start_worker, tmp_path):
    """Cancelling a Running run kills its process group and ends Cancelled."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path)})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    start_worker()
    pid_file = tmp_path / f"{run.id}.pid"
    wait_until(
        lambda: api.read_flow_run(run.id).state.type is StateType.RUNNING and pid_file.exists(),
        timeout=60,
    )
    pid = int(pid_file.read_text())
    assert api.cancel_flow_run(run.id).state.type is StateType.CANCELLING
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.CANCELLED, timeout=60)
    wait_until(lambda: not alive(pid), timeout=30, message="the flow process is still alive")


def test_cancel_a_scheduled_run_is_immediate(api, deploy):
    """A run no worker has claimed is Cancelled at once and never runs."""
    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest())
    assert api.cancel_flow_run(run.id).state.type is StateType.CANCELLED
    assert api.read_work_queue(run.pool_name, "default").ready == 0


def test_invalid_parameters_are_refused_and_nothing_queued(api, deploy):
    """A mistyped parameter is a 422 naming it; no run is created or queued."""
    dep = deploy("noop")
    before = len(api.list_flow_runs(deployment_id=dep.id))
    try:
        api.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": "many"}))
    except Exception as exc:  # noqa: BLE001 - asserting on the error itself
        assert getattr(exc, "status_code", None) == 422
        assert "'n'" in str(exc) and "integer" in str(exc)
    else:
        raise AssertionError("a bad parameter was accepted")
    assert len(api.list_flow_runs(deployment_id=dep.id)) == before
    assert api.read_work_queue(dep.pool_name, "default").ready == 0


def test_abandoned_claim_returns_to_the_queue(api, deploy, pool, start_worker):
    """A claimant that never launches its run loses it at lease expiry; a worker then runs it."""
    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest())
    claimed = api.claim(pool, s.ClaimRequest(worker_name="vanishing-worker", max_runs=1))
    assert [c.run.id for c in claimed] == [run.id]
    assert api.read_flow_run(run.id).state.type is StateType.PENDING
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.SCHEDULED, timeout=30)
    start_worker()
    _all_final(api, [run.id], timeout=60)
    assert api.read_flow_run(run.id).state.type is StateType.COMPLETED
    refused = api.set_flow_run_state(
        run.id, s.StateChange(type=StateType.RUNNING, token=claimed[0].token)
    )
    assert not refused.accepted


def test_a_claimed_run_is_the_same_document_as_the_run_read_back(api, deploy, pool):
    """The run a claim hands out carries every field of GET /api/flow_runs/{id}, its
    result reference included."""
    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest(priority=3))
    ref = s.ResultRef(storage={"type": "local-file-system"}, key="k", location="/r/k",
                      serializer="json")  # fmt: skip
    api.set_flow_run_result(run.id, ref)
    [claimed] = api.claim(pool, s.ClaimRequest(worker_name="reader", max_runs=1))
    assert claimed.run.result == ref and claimed.run.priority == 3
    assert claimed.run == api.read_flow_run(run.id)


def test_infrastructure_report_needs_the_claims_token_and_keeps_details(api, deploy, pool):
    """The infrastructure id is recorded for the claim that launched the run (by id or a
    prefix of it); details given once are kept by a report without details; another
    claim's token gets a 409 and an unknown run a 404, and neither changes anything."""
    run = api.run_deployment(deploy("noop").id, s.DeploymentRunRequest())
    [claimed] = api.claim(pool, s.ClaimRequest(worker_name="reporter", max_runs=1))
    report = s.InfrastructureReport
    api.report_infrastructure(run.id, report(token=claimed.token, infrastructure_id="a",
                                             details={"stream": "s1"}))  # fmt: skip
    api.report_infrastructure(run.id[:12], report(token=claimed.token, infrastructure_id="b"))
    read = api.read_flow_run(run.id)
    assert (read.infrastructure_id, read.infrastructure_details) == ("b", {"stream": "s1"})
    with pytest.raises(ApiError) as refused:
        api.report_infrastructure(run.id, report(token="other-claim", infrastructure_id="c"))
    assert refused.value.status_code == 409 and "claimed again" in refused.value.message
    with pytest.raises(ApiError) as missing:
        api.report_infrastructure("ffff" + run.id[4:], report(token="t", infrastructure_id="d"))
    assert missing.value.status_code == 404
    assert api.read_flow_run(run.id).infrastructure_id == "b"


def test_sigterm_lets_running_runs_finish(api, deploy, start_worker, tmp_path):
    """On SIGTERM a worker stops claiming and waits for its runs to finish before exiting."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path), "seconds": 3})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    queued = api.run_deployment(dep.id, s.DeploymentRunRequest())
    worker = start_worker("--limit", "1", "--grace-seconds", "60")
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.RUNNING, timeout=60)
    assert worker.stop(timeout=60) == 0
    assert api.read_flow_run(run.id).state.type is StateType.COMPLETED
    assert api.read_flow_run(queued.id).state.type is StateType.SCHEDULED


def test_sigterm_kills_runs_left_after_the_grace_period(api, deploy, start_worker, tmp_path):
    """Runs still going when the grace period ends are killed and reported, not left Running."""
    dep = deploy("sleeper", parameters={"folder": str(tmp_path)})
    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    worker = start_worker("--grace-seconds", "1")
    pid_file = tmp_path / f"{run.id}.pid"
    wait_until(lambda: pid_file.exists(), timeout=60)
    pid = int(pid_file.read_text())
    assert worker.stop(timeout=60) == 0
    final = api.read_flow_run(run.id).state
    assert final.type is StateType.CRASHED and "shut down" in final.message, final
    wait_until(lambda: not alive(pid), timeout=30, message="the flow process outlived its worker")
