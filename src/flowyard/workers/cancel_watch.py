"""Learn of a cancellation within a second, not at the worker's next heartbeat.

The heartbeat's answer names the runs being cancelled, but it comes every
``worker_heartbeat_seconds`` (10 s by default), and the engine inside the infrastructure
beats at the same pace: whichever comes first stops the run, so a cancel took up to 10 s
and was often done by the engine itself ("no worker answered"). ``CancelWatch`` reads the
state of the worker's started runs every ``interval`` and hands a Cancelling one to
``on_cancel`` (the worker's kill, which stops the container with the grace period).

Cost: one ``GET /api/flow_runs/{id}`` per started run per ``interval``, and at most
``max_reads`` per round: a worker with more runs checks each less often (the heartbeat
still catches the rest). A worker key may read its pool's runs.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import structlog

from flowyard.client import FlowyardClient
from flowyard.errors import FlowyardError
from flowyard.states import StateType

log = structlog.get_logger()

STOPPING = (StateType.CANCELLING, StateType.CANCELLED)
INTERVAL_SECONDS = 1.0
MAX_READS = 10


class CancelWatch:
    """A daemon thread reading ``runs()`` states; ``on_cancel(run_id)`` once per run."""

    def __init__(
        self,
        client: FlowyardClient,
        runs: Callable[[], list[str]],
        on_cancel: Callable[[str], None],
        *,
        interval: float = INTERVAL_SECONDS,
        max_reads: int = MAX_READS,
    ) -> None:
        self.client = client
        self.runs = runs
        self.on_cancel = on_cancel
        self.interval = interval
        self.max_reads = max_reads
        self._stop = threading.Event()
        self._offset = itertools.count()

    def start(self) -> CancelWatch:
        threading.Thread(target=self._loop, name="flowyard-cancel-watch", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> list[str]:
        """One round: the runs found being cancelled (and handed to ``on_cancel``)."""
        found = []
        for run_id in self._this_round(self.runs()):
            try:
                state = self.client.read_flow_run(run_id).state.type
            except FlowyardError as exc:  # the heartbeat still tells, later
                log.debug("cancel_watch_read_failed", run_id=run_id, error=str(exc))
                continue
            if state in STOPPING:
                found.append(run_id)
                self.on_cancel(run_id)
        return found

    def _this_round(self, runs: list[str]) -> list[str]:
        """All of ``runs``, or ``max_reads`` of them in turn."""
        if len(runs) <= self.max_reads:
            return runs
        start = next(self._offset) * self.max_reads % len(runs)
        return (runs[start:] + runs[:start])[: self.max_reads]

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # never let the watch die; the heartbeat is the fallback
                log.exception("cancel_watch_failed")
