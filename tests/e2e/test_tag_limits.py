"""Tag concurrency limits across flow runs in separate processes, through the CLI and API."""

from __future__ import annotations

import itertools
import json
import textwrap

from click.testing import CliRunner

from flowyard import schemas as s
from flowyard.cli.main import cli
from flowyard.states import StateType
from tests.e2e.conftest import deploy_flow
from tests.waiting import wait_until

TAGGED_FLOWS = textwrap.dedent(
    """
    import json
    import time
    from pathlib import Path

    from flowyard import flow, task


    @task(tags=["warehouse"])
    def load(folder: str, n: int) -> None:
        start = time.time()
        time.sleep(0.4)
        Path(folder, f"{start}-{n}.json").write_text(json.dumps([start, time.time()]))


    @flow(name="tagged")
    def tagged(folder: str, tasks: int = 3) -> None:
        for future in [load.submit(folder, n) for n in range(tasks)]:
            future.result()
    """
)


def _peak(spans: list[tuple[float, float]]) -> int:
    """The most spans open at one instant."""
    events = sorted(
        itertools.chain(((a, 1) for a, _ in spans), ((b, -1) for _, b in spans)),
        key=lambda e: (e[0], e[1]),
    )
    open_, peak = 0, 0
    for _, change in events:
        open_ += change
        peak = max(peak, open_)
    return peak


def test_two_flow_runs_share_the_tag_limit(server, api, pool, start_worker, tmp_path):
    """Two flow runs in two processes, three tagged tasks each, limit 2: never more than 2
    tagged task runs at once, and every task runs."""
    result = CliRunner().invoke(
        cli, ["--api-url", server.url, "concurrency-limit", "create", "warehouse", "2"]
    )
    assert result.exit_code == 0, result.output
    flows, spans_dir = tmp_path / "flows", tmp_path / "spans"
    flows.mkdir()
    spans_dir.mkdir()
    (flows / "flows.py").write_text(TAGGED_FLOWS)
    dep = deploy_flow(api, pool, flows, "tagged", parameters={"folder": str(spans_dir)})
    run_ids = [api.run_deployment(dep.id, s.DeploymentRunRequest()).id for _ in range(2)]
    start_worker("--limit", "2")
    wait_until(
        lambda: all(api.read_flow_run(r).state.type is StateType.COMPLETED for r in run_ids),
        timeout=120,
    )
    spans = [tuple(json.loads(p.read_text())) for p in spans_dir.iterdir()]
    assert len(spans) == 6
    assert _peak(spans) <= 2
    limit = api.read_concurrency_limit("warehouse")
    assert (limit.limit, limit.active_slots) == (2, 0)
    api.delete_concurrency_limit("warehouse")
    assert api.list_concurrency_limits() == []


def test_a_deployments_tags_reach_its_runs_task_runs(server, api, pool, start_worker, tmp_path):
    """As in Prefect, the task runs of a deployed run carry the deployment's tags, so a
    limit on such a tag holds them too."""
    flows, spans_dir = tmp_path / "flows", tmp_path / "spans"
    flows.mkdir()
    spans_dir.mkdir()
    (flows / "flows.py").write_text(TAGGED_FLOWS)
    dep = deploy_flow(
        api, pool, flows, "tagged", parameters={"folder": str(spans_dir), "tasks": 1},
        tags=["nightly"],
    )  # fmt: skip
    run_id = api.run_deployment(dep.id, s.DeploymentRunRequest()).id
    start_worker()
    wait_until(lambda: api.read_flow_run(run_id).state.type is StateType.COMPLETED, timeout=120)
    [task_run] = api.list_task_runs(run_id)
    assert set(task_run.tags) == {"nightly", "warehouse"}
