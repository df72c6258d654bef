"""A stopped worker's claim long-poll must not take the pool's next run.

Its long-poll outlives the worker on the server; left there, it would claim the next run for
a worker that is gone, and the run would wait for its lease to expire before another worker
could have it.
"""

from __future__ import annotations

import http.client
import json
import re
import signal

import httpx

from flowyard import schemas as s
from flowyard.states import StateType
from tests.waiting import wait_until


def claims_waiting(url: str, pool: str) -> float:
    """The server's ``flowyard_claims_waiting`` gauge for the pool."""
    text = httpx.get(f"{url}/metrics").text
    found = re.search(rf'^flowyard_claims_waiting{{pool="{pool}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_a_worker_stopped_while_idle_leaves_no_claim_behind(
    server, api, pool, deploy, start_worker
):
    """SIGINT an idle worker whose claim is long-polling: its claim ends with it, and the
    next run goes to another worker, claimed once (no lease had to expire first)."""
    dep = deploy("noop")
    gone = start_worker("--name", "gone")
    wait_until(lambda: claims_waiting(server.url, pool) == 1, timeout=30)

    gone.process.send_signal(signal.SIGINT)
    assert gone.process.wait(timeout=30) == 0
    wait_until(lambda: claims_waiting(server.url, pool) == 0, timeout=5)

    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    start_worker("--name", "next")
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=60)
    assert api.read_flow_run(run.id).worker_name == "next"
    history = api.read_flow_run_history(run.id)
    pendings = [state for state in history.states if state.type is StateType.PENDING]
    assert len(pendings) == 1, history.states


def test_a_claim_whose_connection_closed_takes_no_run(server, api, pool, deploy, start_worker):
    """A worker killed without a goodbye: its claim's connection closes, and the claim,
    woken by the next run, sees that before it takes the run."""
    dep = deploy("noop")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = {"worker_name": "killed", "max_runs": 1, "wait": 30}
    headers = {"Content-Type": "application/json"}
    connection.request("POST", f"/api/work_pools/{pool}/claim", json.dumps(body), headers)
    wait_until(lambda: claims_waiting(server.url, pool) == 1, timeout=30)
    connection.close()

    run = api.run_deployment(dep.id, s.DeploymentRunRequest())
    wait_until(lambda: claims_waiting(server.url, pool) == 0, timeout=10)
    start_worker("--name", "next")
    wait_until(lambda: api.read_flow_run(run.id).state.type is StateType.COMPLETED, timeout=60)
    history = api.read_flow_run_history(run.id)
    assert [state.type for state in history.states].count(StateType.PENDING) == 1, history
    assert history.run.worker_name == "next"
