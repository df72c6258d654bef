"""Watching a run from a test: its state, its logs, and where it ran (a container, a Job)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from flowyard.client import FlowyardClient
from tests.docker_engine import DockerEngine
from tests.kube.server import KubeApiServer
from tests.waiting import wait_until


def state_of(api: FlowyardClient, run_id: str) -> str:
    return api.read_flow_run(run_id).state.type.value


def wait_for_state(api: FlowyardClient, run_id: str, *states: str, timeout: float = 60) -> str:
    return wait_until(
        lambda: (state := state_of(api, run_id)) in states and state,
        timeout=timeout,
        message=f"run {run_id} never reached {states}",
    )


def completed(api: FlowyardClient, run_id: str) -> None:
    """Wait for the run to end and fail with its message and logs unless it completed."""
    final = wait_for_state(api, run_id, "COMPLETED", "FAILED", "CRASHED", "CANCELLED")
    if final != "COMPLETED":
        message = api.read_flow_run(run_id).state.message
        pytest.fail(f"run ended {final}: {message}\n" + "\n".join(log_lines(api, run_id)))


def log_lines(api: FlowyardClient, run_id: str) -> list[str]:
    return [entry.message for entry in api.read_logs(run_id)]


def containers_of(engine: DockerEngine, run_id: str) -> list[object]:
    with contextlib.closing(engine.client()) as docker:
        label = f"io.flowyard.flow-run-id={run_id}"
        return list(docker.containers.list(all=True, filters={"label": label}, ignore_removed=True))


def job_of(kube: KubeApiServer, run_id: str) -> dict[str, Any] | None:
    jobs, _ = kube.store.list("jobs", None, {"flowyard.io/flow-run-id": run_id}, {})
    return jobs[0] if jobs else None


def has_line(api: FlowyardClient, run_id: str, text: str) -> list[str] | None:
    lines = log_lines(api, run_id)
    return lines if any(text in line for line in lines) else None
