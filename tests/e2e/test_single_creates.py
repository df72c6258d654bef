"""Single run creates from concurrent clients: written in shared transactions, none lost."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from flowyard import schemas as s
from flowyard.client import FlowyardClient
from flowyard.errors import ApiError

CLIENTS, EACH = 6, 5


def test_concurrent_creates_each_get_their_own_run_stored_and_queued(server, api, pool, deploy):
    """Creates sent at once by several clients each answer their own Scheduled run, with
    their own parameters; every run is stored and claimable exactly once."""
    dep = deploy("noop", name=f"single-{uuid.uuid4().hex[:8]}")  # runs of its own

    def create(client_no: int) -> list[s.FlowRun]:
        with FlowyardClient(server.url) as own:
            return [
                own.run_deployment(dep.id, s.DeploymentRunRequest(parameters={"n": client_no}))
                for _ in range(EACH)
            ]

    with ThreadPoolExecutor(CLIENTS) as threads:
        answered = [run for runs in threads.map(create, range(CLIENTS)) for run in runs]

    assert len({run.id for run in answered}) == CLIENTS * EACH
    by_client = sorted(run.parameters["n"] for run in answered)
    assert by_client == sorted(n for n in range(CLIENTS) for _ in range(EACH))
    stored = {run.id: run for run in api.list_flow_runs(deployment_id=dep.id)}
    assert set(stored) == {run.id for run in answered}
    claimed: list[str] = []
    while runs := api.claim(pool, s.ClaimRequest(worker_name="w", max_runs=25)):
        claimed.extend(run.run.id for run in runs)
    assert sorted(claimed) == sorted(stored)


def test_a_refused_create_does_not_fail_the_creates_beside_it(server, api, deploy):
    """A create naming a missing deployment (404) or a bad parameter (422), sent along with
    good ones, is refused alone: the good ones are created."""
    dep = deploy("noop", name=f"single-{uuid.uuid4().hex[:8]}")  # runs of its own

    def create(kind: int) -> int | str:
        ref, parameters = {0: ("no/such", {}), 1: (dep.id, {"n": "x"})}.get(kind, (dep.id, {}))
        with FlowyardClient(server.url) as own:
            try:
                return own.run_deployment(ref, s.DeploymentRunRequest(parameters=parameters)).id
            except ApiError as exc:
                return exc.status_code

    with ThreadPoolExecutor(4) as threads:
        outcomes = list(threads.map(create, [0, 1, 2, 3, 2, 3]))

    assert outcomes[:2] == [404, 422]
    made = outcomes[2:]
    assert all(isinstance(one, str) for one in made)
    assert sorted(run.id for run in api.list_flow_runs(deployment_id=dep.id)) == sorted(made)
