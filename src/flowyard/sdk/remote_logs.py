"""A remote task run's log records: kept on the worker to travel back with its final
state (a short run costs the worker no request to the API), and, for a run that is still
running after ``LIVE_AFTER_SECONDS``, shipped from the worker as they come, so that a
long task's logs reach the run's logs while it runs (at most ``LIVE_AFTER_SECONDS`` + the
shipper's 0.2 s late).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.client.log_shipper import LogShipper
    from flowyard.schemas import LogCreate

LIVE_AFTER_SECONDS = 2.0
FLUSH_SECONDS = 30.0
KEPT_SHIPPERS = 8  # one per flow run (per token) served at a time


class CarriedLogs:
    """One remote task run's log records (the part of ``LogShipper`` the run logger uses):
    kept while the run is short, sent live once it is not."""

    def __init__(self, client: FlowyardClient) -> None:
        self.kept: list[LogCreate] = []
        self._client = client
        self._lock = threading.Lock()  # a task may log from threads of its own
        self._live: LogShipper | None = None
        self._started = time.monotonic()
        _live.watch(self)

    def put(self, document: LogCreate) -> None:
        with self._lock:
            if self._live is None:
                self.kept.append(document)
                return
        self._live.put(document)

    def go_live(self, now: float) -> None:
        """Ship what was kept, and what comes next as it comes, if the run has lasted."""
        if now - self._started < LIVE_AFTER_SECONDS:
            return
        shipper = _live.shipper(self._client)
        with self._lock:
            self._live, kept, self.kept = shipper, self.kept, []
        for document in kept:
            shipper.put(document)

    def end(self) -> list[LogCreate]:
        """The records to travel back with the final state, the others shipped by now
        (the run's token may write nothing once its flow run is final)."""
        _live.forget(self)
        with self._lock:
            live, kept = self._live, self.kept
        if live is not None:
            live.flush(FLUSH_SECONDS)
        return kept


class _Live:
    """This worker process's one thread that turns lasting runs' logs live, and one log
    shipper per client (per flow run token) it ships them with."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[CarriedLogs] = set()
        self._shippers: list[tuple[FlowyardClient, LogShipper]] = []
        self._thread: threading.Thread | None = None

    def watch(self, logs: CarriedLogs) -> None:
        with self._lock:
            self._running.add(logs)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="flowyard-live-logs")
                self._thread.daemon = True
                self._thread.start()

    def forget(self, logs: CarriedLogs) -> None:
        with self._lock:
            self._running.discard(logs)

    def shipper(self, client: FlowyardClient) -> LogShipper:
        from flowyard.client.log_shipper import LogShipper

        with self._lock:
            for known, shipper in self._shippers:
                if known is client:
                    return shipper
            shipper = LogShipper(client).start()
            self._shippers.append((client, shipper))
            if len(self._shippers) > KEPT_SHIPPERS:  # an old flow run's: flushed, stopped
                _, old = self._shippers.pop(0)
                threading.Thread(target=old.close, name="flowyard-logs-close").start()
            return shipper

    def _loop(self) -> None:
        while True:
            time.sleep(LIVE_AFTER_SECONDS / 4)
            with self._lock:
                lasting = [logs for logs in self._running if logs._live is None]
            now = time.monotonic()
            for logs in lasting:
                logs.go_live(now)


_live = _Live()
