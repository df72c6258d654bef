"""The worker chart's init container, run for real: its rendered script against a real API."""

from __future__ import annotations

import contextlib
import json
import secrets
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from flowyard import schemas as s
from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from tests.helm.conftest import ADMIN_KEY, Manifests, container, find

TEMPLATE_PATH = "/etc/flowyard/base-job-template.json"


@pytest.fixture(scope="module")
def admin(keyed_server: ServerProcess) -> Iterator[FlowyardClient]:
    with contextlib.closing(FlowyardClient(keyed_server.url, ADMIN_KEY)) as client:
        yield client


@pytest.fixture
def run_init(
    render: Callable[..., Manifests], keyed_server: ServerProcess, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Render the chart, then run its init container's script with this checkout's CLI."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "flowyard"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m flowyard "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)

    def run(pool: str, template: dict[str, object], key: str) -> subprocess.CompletedProcess[str]:
        template_file = tmp_path / "template.json"
        template_file.write_text(json.dumps(template))
        manifests = render(
            "flowyard-worker",
            "minimal-values.yaml",
            **{"worker.pool": pool, "baseJobTemplate.existingConfigMap": "templates"},
        )
        init = container(find(manifests, "Deployment"), "apply-base-job-template")
        env = {e["name"]: e["value"] for e in init["env"] if "value" in e}
        env.update(
            PATH=f"{bin_dir}:/usr/bin:/bin",
            FLOWYARD_API_URL=keyed_server.url,
            FLOWYARD_API_KEY=key,
            HOME=str(tmp_path),
            FLOWYARD_HOME=str(tmp_path / "home"),
        )
        script = init["args"][0].replace(TEMPLATE_PATH, str(template_file))
        return subprocess.run(
            [*init["command"], script], env=env, capture_output=True, text=True, timeout=120
        )

    return run


def template(marker: str) -> dict[str, object]:
    return {
        "job_configuration": {"command": "{{ command }}", "marker": marker},
        "variables": {"type": "object", "properties": {"command": {"type": "string"}}},
    }


def test_creates_a_missing_pool_with_the_template(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """A pool that does not exist yet is created with the chart's template."""
    pool = f"new-{secrets.token_hex(4)}"
    done = run_init(pool, template("first"), ADMIN_KEY)
    assert done.returncode == 0, done.stderr
    created = admin.read_work_pool(pool)
    assert created.type == "process"
    assert created.base_job_template["job_configuration"]["marker"] == "first"


def test_updates_an_existing_pool(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """A pool that exists gets the chart's template (a re-install or upgrade)."""
    pool = f"old-{secrets.token_hex(4)}"
    assert run_init(pool, template("first"), ADMIN_KEY).returncode == 0
    done = run_init(pool, template("second"), ADMIN_KEY)
    assert done.returncode == 0, done.stderr
    assert admin.read_work_pool(pool).base_job_template["job_configuration"]["marker"] == "second"


def test_a_worker_key_cannot_change_an_existing_pool(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """With a worker key the init container fails and says an admin key is needed."""
    pool = f"locked-{secrets.token_hex(4)}"
    assert run_init(pool, template("first"), ADMIN_KEY).returncode == 0
    worker_key = admin.create_api_key(
        s.ApiKeyCreate(name=f"w-{secrets.token_hex(4)}", role="worker", pools=[pool])
    ).key
    done = run_init(pool, template("second"), worker_key)
    assert done.returncode != 0
    assert "needs an admin API key" in done.stderr
    assert admin.read_work_pool(pool).base_job_template["job_configuration"]["marker"] == "first"
