"""The engine's heartbeat: keeps its run's lease alive, and stops the run when told to.

While the flow runs, a daemon thread tells the API every ``run_heartbeat_seconds`` that
the run is alive, so the run survives its worker (a worker restart does not crash it) and
is Crashed only when the engine itself goes quiet. The answer says when to stop: the run
is being cancelled (and no worker is left to kill it), or it was claimed again. Then the
engine reports Cancelled if it was asked to cancel and ends its whole process group.
"""

from __future__ import annotations

import os
import signal
import threading

import structlog

from flowyard.client import FlowyardClient
from flowyard.errors import FlowyardError
from flowyard.schemas import RunHeartbeatAck, StateChange
from flowyard.states import StateType

log = structlog.get_logger()

SELF_CANCELLED = "cancelled by request; no worker answered, so the engine stopped itself"


class RunHeartbeat:
    def __init__(self, client: FlowyardClient, run_id: str, token: str, interval: float) -> None:
        self.client = client
        self.run_id = run_id
        self.token = token
        self.interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name="flowyard-run-heartbeat", daemon=True
        )

    def start(self) -> RunHeartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                ack = self.client.run_heartbeat(self.run_id, self.token)
            except FlowyardError as exc:
                log.warning("run_heartbeat_failed", run_id=self.run_id, error=str(exc))
                continue
            if ack.stop and not self._done.is_set():
                self._stop_run(ack)

    def _stop_run(self, ack: RunHeartbeatAck) -> None:
        """Report Cancelled when cancelling, then end the run's processes (not only this one)."""
        log.warning("flow_run_stopping", run_id=self.run_id, state=ack.state)
        if ack.state is StateType.CANCELLING:
            change = StateChange(type=StateType.CANCELLED, token=self.token, message=SELF_CANCELLED)
            try:
                self.client.set_flow_run_state(self.run_id, change)
            except FlowyardError as exc:
                log.error("state_report_failed", run_id=self.run_id, error=str(exc))
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)  # the flow's own child processes go too
        os._exit(0)
