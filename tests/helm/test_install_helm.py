"""scripts/install-helm: idempotent, prints where helm is, exports helm's home folders."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helm.conftest import Helm

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-helm"


def install(helm_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLOWYARD_HELM_DIR": str(helm_dir)}
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def helm_dir(helm: Helm) -> Path:
    """The folder scripts/install-helm installed the session's helm into."""
    if helm.binary.parent.name != "bin" or not (helm.binary.parent / ".package").exists():
        pytest.skip(f"{helm.binary} was not installed by scripts/install-helm")
    return helm.binary.parent.parent


def test_second_run_keeps_the_installed_helm(helm_dir: Path) -> None:
    """Run again, it reuses the pinned helm and prints its path."""
    binary = helm_dir / "bin" / "helm"
    before = binary.stat().st_mtime_ns
    done = install(helm_dir)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(binary)
    assert binary.stat().st_mtime_ns == before


def test_env_mode_exports_helm_and_its_homes(helm_dir: Path) -> None:
    """--env prints exports a shell can eval: HELM and temporary HELM_*_HOME folders."""
    done = install(helm_dir, "--env")
    assert done.returncode == 0, done.stderr
    exported = dict(pair.split("=", 1) for pair in done.stdout.removeprefix("export ").split())
    assert exported["HELM"] == str(helm_dir / "bin" / "helm")
    for name in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME", "HELM_DATA_HOME"):
        assert not exported[name].startswith(str(Path.home())), exported
    version = subprocess.run(
        [exported["HELM"], "version", "--short"], capture_output=True, text=True, timeout=30
    )
    assert version.stdout.startswith("v4."), version.stdout
