"""SIGTERM as an exception in the main thread, so that a stopped flow unwinds and its hooks run.

Workers stop a run's infrastructure with SIGTERM, then SIGKILL after a grace period (the
process worker signals the run's process group, ``docker stop`` the container). While
``SigtermRaises`` is installed (by the engine, around its flow run), the first SIGTERM
raises ``TerminationSignal`` wherever the main thread is. The flow engine turns it into
a final state: Cancelled when the run is being cancelled (``on_cancellation`` hooks),
Crashed otherwise (``on_crashed``), then hands that state to ``settle``, with which the
engine reports it and exits at once, even with task threads still busy. Later SIGTERMs
are ignored: the grace period's SIGKILL ends a process that does not finish in time.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from flowyard.states import Cancelled, Crashed, State

CANCELLED_BY_REQUEST = "cancelled by request; the engine stopped the flow"

Settle = Callable[["TerminationSignal", State[Any]], None]


class RunCancelled(Exception):
    """Raised in a flow's code that learns its run is being cancelled (a paused flow, say):
    the flow run ends Cancelled, with its ``on_cancellation`` hooks, and is not retried."""


class TerminationSignal(BaseException):
    """Raised in the main thread when the process is told to stop (SIGTERM)."""

    def __init__(
        self, reason: str | None, is_cancelled: Callable[[], bool], settle: Settle | None
    ) -> None:
        super().__init__(reason or "the process received SIGTERM")
        self.reason = reason
        self._is_cancelled = is_cancelled
        self._settle = settle
        self._cancelled: bool | None = None

    @property
    def cancelled(self) -> bool:
        """Whether the run is being cancelled (asked once, when first needed)."""
        if self._cancelled is None:
            self._cancelled = self.reason is not None or self._is_cancelled()
        return self._cancelled

    def settle(self, state: State[Any]) -> None:
        """Hand the run's final state to the process that installed the handler."""
        if self._settle is not None:
            self._settle(self, state)


def terminated_state(signal_: TerminationSignal) -> State[Any]:
    """Cancelled when the run is being cancelled, Crashed for any other stop."""
    if signal_.cancelled:
        return Cancelled(message=signal_.reason or CANCELLED_BY_REQUEST)
    return Crashed(data=signal_, message="Execution was aborted by a termination signal (SIGTERM)")


_raised: TerminationSignal | None = None


def termination_under_way() -> TerminationSignal | None:
    """The TerminationSignal this process raised, if any (an async flow sees CancelledError)."""
    return _raised


class SigtermRaises:
    """While entered (in the main thread), the first SIGTERM raises ``TerminationSignal``.

    ``is_cancelled`` says whether the run is being cancelled; ``settle`` receives the final
    state once the flow engine has run the hooks. Elsewhere than the main thread it does
    nothing, and ``request`` returns False.
    """

    def __init__(self, is_cancelled: Callable[[], bool], settle: Settle | None = None) -> None:
        self._is_cancelled = is_cancelled
        self._settle = settle
        self._reason: str | None = None
        self._previous: Any = None
        self.installed = False

    def __enter__(self) -> SigtermRaises:
        global _raised
        if threading.current_thread() is threading.main_thread():
            _raised = None
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self.installed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self._previous)
            self.installed = False

    def request(self, reason: str) -> bool:
        """Stop the run from another thread: SIGTERM to the process group (the flow's own
        child processes too) with ``reason`` as the Cancelled state's message."""
        if not self.installed:
            return False
        self._reason = reason
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGTERM)
        else:
            os.kill(os.getpid(), signal.SIGTERM)
        return True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        global _raised
        if _raised is not None:
            return
        _raised = TerminationSignal(self._reason, self._is_cancelled, self._settle)
        raise _raised
