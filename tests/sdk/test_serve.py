"""``flowyard.serve(*deployments, limit=...)`` and ``Flow.to_deployment``, as Prefect 3.9.1's
``prefect.serve``: one process serving several flows' deployments (a real server, the
serving script a real process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from tests.sdk.conftest import ADMIN
from tests.waiting import wait_until

import flowyard
from flowyard import flow
from flowyard import schemas as s
from flowyard.errors import InvalidInput
from flowyard.runner.serving import RunnerDeployment, served_pool_name
from flowyard.states import StateType

SCRIPT = textwrap.dedent(
    """
    from flowyard import flow, serve


    @flow(log_prints=True)
    def hello(name: str = "a") -> str:
        print(f"hello {name}")
        return f"hello {name}"


    @flow
    def bye(name: str = "b") -> str:
        return f"bye {name}"


    if __name__ == "__main__":
        a = hello.to_deployment(name="hi", cron="0 4 * * *", tags=["dev"], parameters={"name": "x"})
        b = bye.to_deployment(name="bye", interval=3600, work_pool_name="ignored")
        print(type(a).__name__, a.name, a.flow_name, a.tags, a.parameters, flush=True)
        serve(a, b, limit=1)
    """
)


@flow
def module_flow(x: int = 1) -> int:
    return x


def test_to_deployment_holds_prefects_fields_and_sends_nothing():
    """``to_deployment`` gives a RunnerDeployment with the name, flow name, tags and
    parameters given (as Prefect's prints them), and refuses an option it does not know."""
    deployment = module_flow.to_deployment("hi", cron="0 4 * * *", tags=["dev"])
    assert isinstance(deployment, RunnerDeployment)
    assert (deployment.name, deployment.flow_name, deployment.tags, deployment.parameters) == (
        "hi",
        "module-flow",
        ["dev"],
        {},
    )
    with pytest.raises(TypeError, match="schedule"):
        module_flow.to_deployment("hi", schedule="daily")


def test_serve_refuses_what_it_cannot_serve():
    """No deployment, a flow instead of a deployment, or one deployment twice: one clear
    error each, before any request."""
    with pytest.raises(InvalidInput, match="at least one deployment"):
        flowyard.serve()
    with pytest.raises(TypeError, match="not Flow"):
        flowyard.serve(module_flow)  # type: ignore[arg-type]
    twice = module_flow.to_deployment("hi")
    with pytest.raises(InvalidInput, match="'module-flow/hi' is given twice"):
        flowyard.serve(twice, module_flow.to_deployment("hi"))


def test_each_set_of_served_deployments_has_its_own_pool():
    """One deployment keeps ``flow.serve``'s pool name; several get one pool named after
    the first and a digest of all, so another set does not share it."""
    assert served_pool_name(["served/every-2s"]) == "serve-served-every-2s"
    both = served_pool_name(["hello/hi", "bye/bye"])
    assert both.startswith("serve-hello-hi-and-1-more-")
    assert both == served_pool_name(["hello/hi", "bye/bye"])
    assert both != served_pool_name(["hello/hi", "other/bye"])
    assert len(served_pool_name([f"f/{'x' * 90}", "g/y"])) <= 100


def test_serve_runs_several_flows_deployments_in_one_process(server, api, tmp_path):
    """Two flows' deployments served by one process (as Prefect's ``serve(a, b)``): both
    are created with their schedules, tags and parameters in one pool (a deployment's
    ``work_pool_name`` is ignored with Prefect's warning); a run of each completes;
    on SIGTERM both are paused."""
    (tmp_path / "two.py").write_text(SCRIPT)
    env = {**os.environ, "FLOWYARD_API_URL": server.url, "FLOWYARD_API_KEY": ADMIN}
    env["FLOWYARD_WORKER_HEARTBEAT_SECONDS"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "two.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        hello, bye = (
            wait_until(lambda name=name: _deployment(api, name), timeout=60)
            for name in ("hello/hi", "bye/bye")
        )
        wait_until(lambda: not api.read_deployment(bye.id).paused, timeout=30)
        assert hello.pool_name == bye.pool_name == served_pool_name(["hello/hi", "bye/bye"])
        assert (hello.tags, hello.parameters, bye.parameters) == (["dev"], {"name": "x"}, {})
        schedules = [(x.kind, x.expression) for d in (hello, bye) for x in api.list_schedules(d.id)]
        assert schedules == [("cron", "0 4 * * *"), ("interval", "3600")]
        runs = [
            api.run_deployment(hello.id, s.DeploymentRunRequest()),
            api.run_deployment(bye.id, s.DeploymentRunRequest(parameters={"name": "z"})),
        ]
        ended = [wait_until(lambda run=run: _ended(api, run.id), timeout=90) for run in runs]
        assert [(r.state.type, r.tags) for r in ended] == [
            (StateType.COMPLETED, ["dev"]),
            (StateType.COMPLETED, []),
        ]
    finally:
        output = _stopped(process)
    _assert_served_then_paused(process, output, "hello/hi", "bye/bye")
    assert "RunnerDeployment hi hello ['dev'] {'name': 'x'}" in output
    assert "the `work_pool_name` argument will be ignored" in output
    assert api.read_deployment(hello.id).paused and api.read_deployment(bye.id).paused


def _deployment(api, ref: str):
    try:
        return api.read_deployment(ref)
    except Exception:
        return None


def _ended(api, run_id: str):
    run = api.read_flow_run(run_id)
    return run if run.state.type.is_terminal else None


ASYNC_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import sys

    from flowyard import aserve, flow


    @flow
    async def greet(name: str = "a") -> str:
        return f"hi {name}"


    async def main() -> None:
        serving = asyncio.create_task(aserve(greet.to_deployment(name="async")))
        if sys.argv[1] == "cancel":  # the loop goes on while serving: it reads stdin
            await asyncio.to_thread(sys.stdin.readline)
            serving.cancel()
            try:
                await serving
            except asyncio.CancelledError:
                print("aserve cancelled", flush=True)
        else:
            await serving
            print("aserve returned", flush=True)


    if __name__ == "__main__":
        asyncio.run(main())
    """
)


@pytest.mark.parametrize("stop", ["cancel", "sigterm"])
def test_aserve_serves_from_async_code_until_cancelled_or_signalled(server, api, tmp_path, stop):
    """``await aserve(deployment)`` (Prefect's async ``serve``, same arguments): a run of
    the deployment completes; cancelling the awaiting task, or SIGTERM, stops serving and
    pauses the deployment."""
    (tmp_path / "served.py").write_text(ASYNC_SCRIPT)
    env = {**os.environ, "FLOWYARD_API_URL": server.url, "FLOWYARD_API_KEY": ADMIN}
    env["FLOWYARD_WORKER_HEARTBEAT_SECONDS"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(tmp_path / "served.py"), stop],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deployment = wait_until(lambda: _deployment(api, "greet/async"), timeout=60)
        wait_until(lambda: not api.read_deployment(deployment.id).paused, timeout=30)
        run = api.run_deployment(deployment.id, s.DeploymentRunRequest(parameters={"name": "z"}))
        ended = wait_until(lambda: _ended(api, run.id), timeout=90)
        assert ended.state.type == StateType.COMPLETED
    finally:
        output = _stopped(process, b"stop\n" if stop == "cancel" else None)
    _assert_served_then_paused(process, output, "greet/async")
    assert ("aserve cancelled" if stop == "cancel" else "aserve returned") in output
    assert api.read_deployment(deployment.id).paused


def _stopped(process: subprocess.Popen[bytes], line: bytes | None = None) -> str:
    """Stop a serving script (with ``line`` on its stdin, else SIGTERM); its output."""
    if line is None:
        process.send_signal(signal.SIGTERM)
    return process.communicate(line, timeout=60)[0].decode()


def _assert_served_then_paused(
    process: subprocess.Popen[bytes], output: str, *full_names: str
) -> None:
    assert process.returncode == 0, output
    assert "Your deployments are being served and polling for scheduled runs!" in output
    for full_name in full_names:
        assert f"Stopped serving {full_name}: paused its schedules" in output
