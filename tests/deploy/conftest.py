"""Fixtures of the deployment tests: docker-compose and the images the compose stack runs."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docker_engine import TEST_IMAGE, DockerEngine, dockerd_available

IMAGES = Path(__file__).resolve().parent / "images"


@dataclass(frozen=True)
class ComposeImages:
    """Local images for docker-compose.host.yml (no registry is reachable)."""

    flowyard: str
    postgres: str
    redis: str


def _missing(what: str, hint: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{what} is not installed; {hint}")
    pytest.skip(f"{what} is not installed here")


@pytest.fixture(scope="session")
def docker_compose() -> str:
    """Debian's docker-compose (v1.29); scripts/test installs it."""
    found = shutil.which("docker-compose")
    if found is None:
        _missing("docker-compose", "scripts/test must apt-get install docker-compose")
    assert found is not None
    return found


@pytest.fixture(scope="package")
def compose_engine() -> Iterator[DockerEngine]:
    """A private dockerd (no bridge); skipped without dockerd, required in CI."""
    if not dockerd_available():
        _missing("dockerd", "scripts/test must install docker.io")
    engine = DockerEngine().start()
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(scope="package")
def compose_images(compose_engine: DockerEngine) -> ComposeImages:
    """The flowyard image from the repository's Dockerfile (with PostgreSQL's driver, its
    `postgres` extra), and PostgreSQL and Redis images
    built FROM the local Debian image with apt (cached layers after the first build)."""
    compose_engine.ensure_base_image()
    compose_engine.build_test_image()
    return ComposeImages(
        flowyard=TEST_IMAGE,
        postgres=compose_engine.build_image(IMAGES / "postgres", "flowyard-compose/postgres:15"),
        redis=compose_engine.build_image(IMAGES / "redis", "flowyard-compose/redis:7"),
    )
