"""The attempt loop a flow run and a task run share: run, retry after a delay, finish.

An engine supplies what differs: the function, its timeout and label, the scope the run
executes in, how it sleeps between attempts, and what a returned value means.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from flowyard.sdk.logs import log_prints
from flowyard.sdk.timeouts import await_with_timeout, call_with_timeout
from flowyard.states import State


class AttemptLoop:
    """``run_sync`` and ``run_async`` over the hooks below, which engines implement."""

    state: State[Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    label: str  # "Flow" or "Task", for timeout messages

    def _fn(self) -> Callable[..., Any]:
        raise NotImplementedError

    def _timeout(self) -> float | None:
        raise NotImplementedError

    def _sleep(self, seconds: float) -> None:
        raise NotImplementedError

    def _scope(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _log_prints(self) -> bool:
        raise NotImplementedError

    def _begin(self) -> bool:
        raise NotImplementedError

    def _attempt_starts(self) -> bool:
        raise NotImplementedError

    def _on_exception(self, exc: Exception) -> float | None:
        raise NotImplementedError

    def _on_value(self, value: Any) -> None:
        raise NotImplementedError

    def _on_crash(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _finish(self) -> State[Any]:
        raise NotImplementedError

    def run_sync(self) -> State[Any]:
        if self._begin():
            with self._scope(), log_prints(self._log_prints()):
                try:
                    while self._attempt_starts():
                        try:
                            value = call_with_timeout(
                                self._fn(), self._timeout(), self.label, *self.args, **self.kwargs
                            )
                        except Exception as exc:
                            delay = self._on_exception(exc)
                            if delay is not None:
                                self._sleep(delay)
                            continue
                        self._on_value(value)
                except BaseException as exc:
                    self._on_crash(exc)
                    raise
        return self._finish()

    async def run_async(self) -> State[Any]:
        import asyncio

        if self._begin():
            with self._scope(), log_prints(self._log_prints()):
                try:
                    while self._attempt_starts():
                        try:
                            value = await await_with_timeout(
                                self._fn()(*self.args, **self.kwargs), self._timeout(), self.label
                            )
                        except Exception as exc:
                            delay = self._on_exception(exc)
                            if delay:
                                await asyncio.sleep(delay)
                            continue
                        self._on_value(value)
                except BaseException as exc:
                    self._on_crash(exc)
                    raise
        return self._finish()
