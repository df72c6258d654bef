"""Fixtures of the chart tests: the real helm binary (scripts/install-helm) and renderers."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from flowyard.cli.processes import ServerProcess
from tests.waiting import wait_until

CHARTS = Path(__file__).resolve().parents[2] / "helm"
KUBERNETES_VERSION = "1.31.0"  # the oldest Kubernetes the charts promise to render for


def find_helm() -> Path | None:
    """helm where scripts/install-helm puts it ($FLOWYARD_HELM_DIR or ~/.cache/flowyard/helm)."""
    default = Path.home() / ".cache" / "flowyard" / "helm"
    installed = Path(os.environ.get("FLOWYARD_HELM_DIR", default)) / "bin" / "helm"
    if installed.exists():
        return installed
    found = os.environ.get("HELM") or shutil.which("helm")
    return Path(found) if found else None


@dataclass(frozen=True)
class Helm:
    """The helm binary with its cache, config and data folders in a temp dir."""

    binary: Path
    env: dict[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stderr}")
        return done


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The real helm (required in CI: scripts/test runs scripts/install-helm first)."""
    binary = find_helm()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("helm is not installed; scripts/test must run scripts/install-helm")
        pytest.skip("helm is not installed here (run scripts/install-helm)")
    homes = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(homes / "cache"),
        "HELM_CONFIG_HOME": str(homes / "config"),
        "HELM_DATA_HOME": str(homes / "data"),
    }
    return Helm(binary, env)


def template_args(chart: str, values: list[str], sets: dict[str, str]) -> list[str]:
    args = ["template", "release", str(CHARTS / chart), "--namespace", "flowyard"]
    for name in values:
        args += ["-f", str(CHARTS / chart / "ci" / name)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    return args


Manifests = list[dict[str, Any]]


@pytest.fixture
def render(helm: Helm) -> Callable[..., Manifests]:
    """``helm template`` a chart with ci/ values files and --set pairs, parsed with PyYAML."""

    def run(chart: str, *values: str, **sets: str) -> Manifests:
        output = helm.run(*template_args(chart, list(values), sets)).stdout
        return [doc for doc in yaml.safe_load_all(output) if doc]

    return run


@pytest.fixture
def render_error(helm: Helm) -> Callable[..., str]:
    """The error of a ``helm template`` that must fail."""

    def run(chart: str, *values: str, **sets: str) -> str:
        done = helm.run(*template_args(chart, list(values), sets), check=False)
        assert done.returncode != 0, f"rendering succeeded:\n{done.stdout[:2000]}"
        return done.stderr

    return run


def kubernetes_validate() -> list[str]:
    """The kubernetes-validate CLI of this Python environment (a dev extra)."""
    script = Path(sys.executable).with_name("kubernetes-validate")
    return [str(script)] if script.exists() else ["kubernetes-validate"]


def find(manifests: Manifests, kind: str, name: str | None = None) -> dict[str, Any]:
    """The one manifest of ``kind`` (and ``name``); fails when there is not exactly one."""
    hits = [
        m
        for m in manifests
        if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)
    ]
    assert len(hits) == 1, f"{len(hits)} {kind} named {name}: {[m['kind'] for m in manifests]}"
    return hits[0]


def kinds(manifests: Manifests) -> list[str]:
    return sorted(m["kind"] for m in manifests)


def container(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    pod = manifest["spec"]["template"]["spec"]
    for item in pod["containers"] + pod.get("initContainers", []):
        if item["name"] == name:
            return item
    raise AssertionError(f"no container {name}")


def env_of(item: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in item.get("env", [])}


ADMIN_KEY = "fy_admin_" + secrets.token_hex(16)


@pytest.fixture(scope="package")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An API server that requires keys, like one the chart's workers talk to."""
    process = ServerProcess(
        tmp_path_factory.mktemp("template-server"), env={"FLOWYARD_API_KEY": ADMIN_KEY}
    )

    def healthy() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
            return httpx.get(f"{process.url}/api/health", headers=headers).status_code == 200
        return False

    try:
        wait_until(healthy, timeout=60, interval=0.05, message="the API answers")
        yield process
    finally:
        process.stop()
