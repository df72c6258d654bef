"""``flowyard server start``: the API with its services, on the embedded or configured backends."""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import os
import signal
from collections.abc import Callable
from types import FrameType

import structlog
import uvicorn

from flowyard.errors import InvalidInput
from flowyard.orchestrator.home_lock import HomeLock, listening_socket
from flowyard.orchestrator.memory import limit_malloc_arenas
from flowyard.pools import ManagedRedis, topology
from flowyard.private_files import OWNER_ONLY_UMASK, private_directory
from flowyard.settings import Settings

log = structlog.get_logger()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(settings: Settings, announce: Callable[[], None] = lambda: None) -> None:
    """Run the API until interrupted; starts and stops a local Redis when none is configured.

    The data folder's lock and the port are taken first (``Conflict`` if either is held),
    then ``announce`` is called, then the rest starts."""
    if not is_loopback(settings.server_host) and not settings.api_key:
        raise InvalidInput(
            f"refusing to listen on {settings.server_host} without an API key; "
            "set FLOWYARD_API_KEY (clients send it as a Bearer token)"
        )
    if settings.redis_url:  # a malformed URL is one line here, not a failed startup's trace
        topology.parse(settings.redis_url)
    from flowyard.orchestrator.app import create_app, stop_services

    limit_malloc_arenas()  # before any thread: the RSS no longer grows with the store
    os.umask(OWNER_ONLY_UMASK)  # whatever the server or its libraries write is ours alone
    private_directory(settings.home)
    with contextlib.ExitStack() as stack:
        # last, once all is stopped: the interpreter's exit then skips a full collection
        # of the server's heap (over a second of the stop time, for nothing)
        stack.callback(gc.freeze)
        stack.enter_context(HomeLock(settings.home))
        sock = stack.enter_context(listening_socket(settings.server_host, settings.server_port))
        announce()
        redis_url = settings.redis_url
        if not redis_url:  # its URL, with a password made for this start, stays in memory
            managed = stack.enter_context(ManagedRedis(workdir=settings.home / "redis"))
            redis_url = managed.url
        app = create_app(settings, redis_url=redis_url)
        config = uvicorn.Config(
            app,
            host=settings.server_host,
            port=settings.server_port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
        _exit_cleanly_on_sigterm()
        log.info(
            "server_starting",
            url=f"http://{settings.server_host}:{settings.server_port}",
            database=settings.resolved_database_url.split("@")[-1],
        )
        _Server(config, on_exit=lambda: stop_services(app)).run(sockets=[sock])


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when a shutdown begins (it drains requests first)."""

    def __init__(self, config: uvicorn.Config, on_exit: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_exit = on_exit

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._on_exit()
        super().handle_exit(sig, frame)


def _exit_cleanly_on_sigterm() -> None:
    """Let SIGTERM unwind the stack, so the managed Redis is stopped too.

    uvicorn shuts down gracefully on SIGTERM and then raises the signal again for the
    handler that was installed before it; with the default one the process would die
    there, before the ``finally`` blocks that stop what the server started.
    """

    def leave(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)
