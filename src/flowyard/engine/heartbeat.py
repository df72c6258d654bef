"""The engine's heartbeat: keeps its run's lease alive, and stops the run when told to.

While the flow runs, a daemon thread tells the API every ``run_heartbeat_seconds`` that
the run is alive, so the run survives its worker (a worker restart does not crash it) and
is Crashed only when the engine itself goes quiet; it beats through a flow retry's wait
(AwaitingRetry) too. The answer says when to stop: the run is being cancelled (and no
worker is left to kill it), or it was claimed again, or suspended from outside (then the
flow leaves at its next task call: ``flowyard.sdk.pause.leave_if_suspended``).

A worker that started the run stops it when it is cancelled (its own cancel watch reads
the state every second); the engine waits ``worker_patience`` seconds for that before
stopping the run itself, so a cancel reads "the engine stopped the flow" when a worker
was there to do it. The engine stops a cancelled run gracefully when it can
(``stop_gracefully``: SIGTERM to its process group, so the flow unwinds, its
``on_cancellation`` hooks run and the engine reports Cancelled); if the engine is still
there ``grace_seconds`` later, or for a run claimed again, the heartbeat reports
Cancelled when cancelling and kills the whole process group.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import structlog

from flowyard.client import FlowyardClient
from flowyard.errors import FlowyardError
from flowyard.schemas import StateChange
from flowyard.sdk.pause import suspended_from_outside
from flowyard.states import StateType

log = structlog.get_logger()

SELF_CANCELLED = "cancelled by request; no worker answered, so the engine stopped itself"
STOP_GRACE_SECONDS = 30.0
WORKER_PATIENCE_SECONDS = 5.0
CANCEL_STATES = (StateType.CANCELLING, StateType.CANCELLED)


class RunHeartbeat:
    def __init__(
        self,
        client: FlowyardClient,
        run_id: str,
        token: str,
        interval: float,
        *,
        stop_gracefully: Callable[[str], bool] | None = None,
        grace_seconds: float = STOP_GRACE_SECONDS,
        worker_patience: float = WORKER_PATIENCE_SECONDS,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self.token = token
        self.interval = interval
        self.grace_seconds = grace_seconds
        self.worker_patience = worker_patience
        self._stop_gracefully = stop_gracefully
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
        overdue_at: float | None = None  # set once a graceful stop was asked for
        cancelling_since: float | None = None  # when a beat first heard of the cancel
        last = StateType.RUNNING
        while not self._done.wait(self.interval):
            if overdue_at is not None and time.monotonic() >= overdue_at:
                self._stop_by_force(last)
            try:
                ack = self.client.run_heartbeat(self.run_id, self.token)
            except FlowyardError as exc:
                log.warning("run_heartbeat_failed", run_id=self.run_id, error=str(exc))
                continue
            last = ack.state
            if ack.run_token:
                self.client.renew_key(ack.run_token)
            if not ack.stop or self._done.is_set() or overdue_at is not None:
                continue
            if ack.state is StateType.PAUSED:  # suspended: by the flow (leaving already),
                suspended_from_outside(self.run_id)  # or from outside: leave at a task call
                continue
            if ack.state is StateType.CANCELLING:  # the worker may be stopping it already
                cancelling_since = cancelling_since or time.monotonic()
                if time.monotonic() - cancelling_since < self.worker_patience:
                    continue
            log.warning("flow_run_stopping", run_id=self.run_id, state=ack.state)
            if ack.state in CANCEL_STATES and self._request_graceful_stop():
                overdue_at = time.monotonic() + self.grace_seconds
            else:
                self._stop_by_force(ack.state)

    def _request_graceful_stop(self) -> bool:
        return self._stop_gracefully is not None and self._stop_gracefully(SELF_CANCELLED)

    def _stop_by_force(self, state: StateType) -> None:
        """Report Cancelled when cancelling, then end the run's processes (not only this one)."""
        log.warning("flow_run_killed", run_id=self.run_id, state=state)
        if state is StateType.CANCELLING:
            change = StateChange(type=StateType.CANCELLED, token=self.token, message=SELF_CANCELLED)
            try:
                self.client.set_flow_run_state(self.run_id, change)
            except FlowyardError as exc:
                log.error("state_report_failed", run_id=self.run_id, error=str(exc))
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)  # the flow's own child processes go too
        os._exit(0)
