"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

SRC = Path(__file__).resolve().parents[1] / "src"
# Child processes (servers, workers, engines) run this checkout's code, whichever
# checkout happens to be pip-installed.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))

from flowyard.pools import ManagedRedis  # noqa: E402
from tests.helpers.redis_cluster import LocalCluster, running_cluster  # noqa: E402
from tests.postgres import PostgresServer, find_bin  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedRedis]:
    """One real ``redis-server`` on loopback for the session, no persistence."""
    with ManagedRedis(workdir=tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: ManagedRedis) -> str:
    """The session server's URL, emptied (FLUSHALL) before the test."""
    client = redis.Redis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A real Redis Cluster of three primaries on loopback for the session (~2 s to form);
    a test that needs it empty calls ``flush()``."""
    with running_cluster(tmp_path_factory.mktemp("redis-cluster")) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server on loopback for the session (required in CI)."""
    if not find_bin("initdb"):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run must install it")
        pytest.skip("PostgreSQL is not installed here")
    server = PostgresServer().start()
    yield server
    server.stop()
