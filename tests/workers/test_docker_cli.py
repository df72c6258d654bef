"""The CLI around docker pools: default template, pool update, ``deploy --image``."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from flowyard.cli.processes import ServerProcess
from flowyard.client import FlowyardClient
from tests.helpers.cli import flowyard


def cli(server: ServerProcess, *args: str, cwd: Path | None = None) -> str:
    """The output of a ``flowyard`` command that must succeed."""
    done = flowyard(server.url, *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_default_template_lists_the_docker_variables(server: ServerProcess):
    """The docker type's default template has its variables with their defaults."""
    out = cli(server, "work-pool", "get-default-base-job-template", "--type", "docker")
    properties = json.loads(out)["variables"]["properties"]
    assert properties["network_mode"]["default"] == "host"
    assert properties["image_pull_policy"]["default"] == "if_not_present"
    assert {"image", "volumes", "registry_credentials", "docker_host"} <= set(properties)


def test_work_pool_update_replaces_the_template(
    server: ServerProcess, api: FlowyardClient, tmp_path: Path
):
    """``work-pool update --base-job-template`` stores the new template."""
    pool = f"docker-{uuid.uuid4().hex[:8]}"
    cli(server, "work-pool", "create", pool, "--type", "docker")
    template = json.loads(
        cli(server, "work-pool", "get-default-base-job-template", "--type", "docker")
    )
    template["variables"]["properties"]["image"]["default"] = "example/flows:1"
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template))
    cli(server, "work-pool", "update", pool, "--base-job-template", str(path), "--description", "d")
    stored = api.read_work_pool(pool)
    assert stored.base_job_template["variables"]["properties"]["image"]["default"] == (
        "example/flows:1"
    )
    assert stored.description == "d"


def test_deploy_image_sets_the_image_job_variable(
    server: ServerProcess, api: FlowyardClient, docker_pool: str, docker_flows_dir: Path
):
    """``deploy --image`` ties the deployment to an image through its job variables."""
    cli(
        server,
        "deploy",
        "flows.py:hello",
        "--name",
        "img",
        "--pool",
        docker_pool,
        "--image",
        "example/flows:2",
        cwd=docker_flows_dir,
    )
    assert api.read_deployment("hello/img").job_variables == {"image": "example/flows:2"}
