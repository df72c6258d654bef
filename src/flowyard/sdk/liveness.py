"""Heartbeats of flow runs called directly and recorded on a server (no worker, no engine).

A deployed run's engine heartbeats it; a flow called from a script has only its own
process. So that such a run is not left Running forever when that process dies (killed,
out of memory, the machine gone), the process promises heartbeats when it creates the run
(``heartbeat_seconds``) and one daemon thread per client beats every run it still has
open; the API crashes a run not heard of for three beats. The thread ends when no run is
left, so an idle script keeps no thread.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from flowyard.errors import FlowyardError

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient

log = structlog.get_logger()

_lock = threading.Lock()
_beats: dict[int, RunBeats] = {}  # id(client) -> its beats


class RunBeats:
    """Beats the open direct runs of one client every ``interval`` seconds."""

    def __init__(self, client: FlowyardClient, interval: float) -> None:
        self.client = client
        self.interval = interval
        self.runs: set[str] = set()
        self._thread: threading.Thread | None = None
        self._pause = threading.Event()  # never set: waited on between beats

    def add(self, run_id: str) -> None:
        with _lock:
            self.runs.add(run_id)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._beat, name="flowyard-run-beats", daemon=True
                )
                self._thread.start()

    def remove(self, run_id: str) -> None:
        with _lock:
            self.runs.discard(run_id)

    def _beat(self) -> None:
        while not self._pause.wait(self.interval):
            with _lock:
                open_runs = sorted(self.runs)
                if not open_runs:
                    self._thread = None
                    return
            for run_id in open_runs:
                try:
                    self.client.run_heartbeat(run_id, None, self.interval)
                except FlowyardError as exc:
                    log.warning("run_heartbeat_failed", run_id=run_id, error=str(exc))


def run_beats(client: FlowyardClient) -> RunBeats:
    """The beats of ``client``'s direct runs (made on first use)."""
    with _lock:
        beats = _beats.get(id(client))
        if beats is None:
            from flowyard.settings import Settings

            beats = _beats[id(client)] = RunBeats(client, Settings().run_heartbeat_seconds)
        return beats
