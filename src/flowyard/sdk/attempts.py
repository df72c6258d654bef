"""The attempt loop a flow run and a task run share: run, retry after a delay, finish.

An engine supplies what differs: the function, its timeout and label, the scope the run
executes in, how it sleeps between attempts, and what a returned value means.

Only a retry (a delay from ``_on_exception`` or ``_on_value``) starts another attempt:
whatever state a returned value leaves the run in, final or not, the loop ends.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from flowyard.sdk.logs import log_prints
from flowyard.sdk.timeouts import Deadline, await_with_timeout, call_with_timeout
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

    def _on_value(self, value: Any) -> float | None:
        """Take the function's return value; the delay before a retry, or None when final."""
        raise NotImplementedError

    def _on_crash(self, exc: BaseException) -> None:
        raise NotImplementedError

    def _finish(self) -> State[Any]:
        raise NotImplementedError

    def enter_run_scope(self) -> ExitStack:
        """The run's scope and print capture, entered; a generator run calls it in its
        own context (engines' scopes may set variables at once)."""
        scope = ExitStack()
        scope.enter_context(self._scope())
        scope.enter_context(log_prints(self._log_prints()))
        return scope

    def run(self) -> State[Any]:
        """Run to the final state, whatever the function: an async one on its own event
        loop, a generator drained (the list of what it yielded is the result)."""
        fn = self._fn()
        if inspect.iscoroutinefunction(fn):
            import asyncio

            return asyncio.run(self.run_async())
        if inspect.isgeneratorfunction(fn):
            return drain(self.run_generator(collect=True))
        if inspect.isasyncgenfunction(fn):
            import asyncio

            from flowyard.sdk.async_streams import drain_async

            state: State[Any] = asyncio.run(drain_async(self))
            return state
        return self.run_sync()

    def run_generator(  # noqa: C901 - one loop of attempts and values; split, it hid the order
        self, collect: bool = False
    ) -> Generator[Any, None, State[Any]]:
        """Run a generator function, handing on each value as it is yielded; returns the
        final state.

        The run stays Running while its caller consumes the values. Its body runs in a
        context of its own (the run's scope entered there), so the caller's code between
        two values is not inside the run. A failure retries like any run — the values of
        the failed attempt were handed on already, as in Prefect. A caller that stops
        early completes the run. ``timeout_seconds`` counts from the start of an attempt,
        the caller's time between values included, as in Prefect.
        """
        context = contextvars.copy_context()
        collected: list[Any] | None = [] if collect else None
        if context.run(self._begin):
            scope = context.run(self.enter_run_scope)
            try:
                while context.run(self._attempt_starts):
                    delay: float | None = None
                    deadline = Deadline(self._timeout(), self.label)
                    values = context.run(self._fn(), *self.args, **self.kwargs)
                    while True:
                        try:
                            value = context.run(deadline.next_value, values)
                        except StopIteration:
                            delay = context.run(self._on_value, collected)
                            if delay is not None:
                                self._sleep(delay)
                            break
                        except Exception as exc:
                            delay = context.run(self._on_exception, exc)
                            if delay is not None:
                                self._sleep(delay)
                            break
                        if collected is not None:
                            collected.append(value)
                        try:
                            yield value
                        except GeneratorExit:  # the caller has what it wanted
                            context.run(values.close)
                            context.run(self._on_value, None)
                            delay = None
                            break
                    if delay is None:
                        break
            except BaseException as exc:
                context.run(self._on_crash, exc)
                raise
            finally:
                context.run(scope.close)
        state: State[Any] = context.run(self._finish)
        return state

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
                        else:
                            delay = self._on_value(value)
                        if delay is None:
                            break
                        self._sleep(delay)
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
                        else:
                            delay = self._on_value(value)
                        if delay is None:
                            break
                        if delay:
                            await asyncio.sleep(delay)
                except BaseException as exc:
                    self._on_crash(exc)
                    raise
        return self._finish()


def drain(run: Generator[Any, None, State[Any]]) -> State[Any]:
    """Consume a ``run_generator`` to its end; its final state."""
    while True:
        try:
            next(run)
        except StopIteration as stop:
            state: State[Any] = stop.value
            return state


def stream(run: Generator[Any, None, State[Any]]) -> Iterator[Any]:
    """What a generator flow or task call returns: its values as they come, then its
    failure raised if it did not complete."""
    state = yield from run
    if not state.is_completed():
        state.result(_sync=True)
