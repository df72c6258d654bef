"""The worker chart's init container, run for real: its rendered script against a real API."""

from __future__ import annotations

import contextlib
import json
import os
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

    def run(
        pool: str,
        template: dict[str, object],
        key: str,
        admin_key: str | None = None,
        more_pools: tuple[str, ...] = (),
    ) -> subprocess.CompletedProcess[str]:
        template_file = tmp_path / "template.json"
        template_file.write_text(json.dumps(template))
        sets = {"worker.pool": pool, "baseJobTemplate.existingConfigMap": "templates"}
        if more_pools:
            sets["worker.pools"] = "{" + ",".join(more_pools) + "}"
        if admin_key is not None:
            sets["baseJobTemplate.adminKey.existingSecret"] = "pool-admin"
        manifests = render("flowyard-worker", "minimal-values.yaml", **sets)
        init = container(find(manifests, "Deployment"), "apply-base-job-template")
        env = {e["name"]: e["value"] for e in init["env"] if "value" in e}
        secrets_env = [e["name"] for e in init["env"] if "valueFrom" in e]
        assert secrets_env == (["FLOWYARD_ADMIN_API_KEY"] if admin_key is not None else [])
        if admin_key is not None:  # what the kubelet puts there from the optional Secret
            env["FLOWYARD_ADMIN_API_KEY"] = admin_key
        env.update(
            PATH=f"{bin_dir}:/usr/bin:/bin",
            FLOWYARD_API_URL=keyed_server.url,
            FLOWYARD_API_KEY=key,
            HOME=str(tmp_path),
            FLOWYARD_HOME=str(tmp_path / "home"),
        )
        if "PYTHONPATH" in os.environ:  # this checkout's sources, when run from a worktree
            env["PYTHONPATH"] = os.environ["PYTHONPATH"]
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


def test_updates_an_existing_pool_with_the_admin_secret(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """A pool that exists gets the chart's template (an upgrade) when the optional admin
    key Secret is given; the worker's own key still does the rest."""
    pool = f"old-{secrets.token_hex(4)}"
    key = worker_key(admin, pool)
    assert run_init(pool, template("first"), key).returncode == 0
    done = run_init(pool, template("second"), key, admin_key=ADMIN_KEY)
    assert done.returncode == 0, done.stderr
    assert "base job template applied" in done.stdout
    assert admin.read_work_pool(pool).base_job_template["job_configuration"]["marker"] == "second"


def test_a_worker_key_creates_once_then_every_restart_is_a_no_op(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """The worker key alone: the first pod creates the pool, the next (a restart, a second
    replica, a scale-up from zero) succeeds and changes nothing, even with a new template."""
    pool = f"locked-{secrets.token_hex(4)}"
    key = worker_key(admin, pool)
    first = run_init(pool, template("first"), key)
    assert first.returncode == 0, first.stderr
    created = admin.read_work_pool(pool)
    again = run_init(pool, template("second"), key)
    assert again.returncode == 0, again.stderr
    assert "updated only with baseJobTemplate.adminKey" in again.stdout
    after = admin.read_work_pool(pool)
    assert after.base_job_template == created.base_job_template
    assert after.base_job_template["job_configuration"]["marker"] == "first"


def test_every_pool_of_a_worker_is_created_once(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """With worker.pools, each pool is created with the template, and a restart is a no-op."""
    pools = (f"one-{secrets.token_hex(4)}", f"two {secrets.token_hex(4)}")  # names hold spaces
    body = s.ApiKeyCreate(name=f"w-{secrets.token_hex(4)}", role="worker", pools=list(pools))
    key = admin.create_api_key(body).key
    for attempt in ("first", "second"):
        done = run_init(pools[0], template(attempt), key, more_pools=pools[1:])
        assert done.returncode == 0, done.stderr
    for pool in pools:
        assert (
            admin.read_work_pool(pool).base_job_template["job_configuration"]["marker"] == "first"
        )


def test_a_refused_update_is_logged_not_fatal(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """An admin Secret holding a key that may not update the pool: the init container says
    so and lets the worker start; the pool keeps its template."""
    pool = f"kept-{secrets.token_hex(4)}"
    key = worker_key(admin, pool)
    assert run_init(pool, template("first"), key).returncode == 0
    done = run_init(pool, template("second"), key, admin_key=key)
    assert done.returncode == 0, done.stderr
    assert "could not update the base job template" in done.stderr
    assert admin.read_work_pool(pool).base_job_template["job_configuration"]["marker"] == "first"


def test_a_key_of_another_pool_fails_the_init_container(
    run_init: Callable[..., subprocess.CompletedProcess[str]], admin: FlowyardClient
) -> None:
    """A key that can neither read nor create the pool: the worker could not serve it
    either, so the init container fails and says why; no pool is created."""
    pool = f"other-{secrets.token_hex(4)}"
    done = run_init(pool, template("first"), worker_key(admin, f"not-{pool}"))
    assert done.returncode != 0
    assert "cannot read or create pool" in done.stderr
    assert pool not in {p.name for p in admin.list_work_pools()}


def worker_key(admin: FlowyardClient, pool: str) -> str:
    body = s.ApiKeyCreate(name=f"w-{secrets.token_hex(4)}", role="worker", pools=[pool])
    return admin.create_api_key(body).key
