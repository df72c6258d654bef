"""One task run from start to final state: inputs, cache, attempts, persistence, hooks.

``TaskRunEngine.run_sync()`` and ``run_async()`` share every step but the call itself
and the wait between retries. The run's state goes ``Running`` → (``AwaitingRetry`` →
``Retrying``)* → ``Completed`` / ``Failed``; a cache hit is ``Completed`` named
``Cached``; an upstream that did not complete leaves the run ``Pending`` named
``NotReady`` without calling the function.
"""

from __future__ import annotations

import contextlib
import inspect
import traceback
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from flowyard.errors import UpstreamTaskError
from flowyard.sdk.attempts import AttemptLoop
from flowyard.sdk.cache_locks import CacheLock, cache_lock
from flowyard.sdk.caching import CachePolicy
from flowyard.sdk.concurrency import tag_slots
from flowyard.sdk.context import (
    FlowRunContext,
    TaskRunContext,
    current_tags,
    get_flow_run_context,
    get_task_run_context,
    task_run_scope,
)
from flowyard.sdk.futures import resolve
from flowyard.sdk.hooks import run_hooks, wait_for_awaitable
from flowyard.sdk.logs import get_run_logger, log_prints_enabled
from flowyard.sdk.redaction import masked
from flowyard.sdk.result_refs import reference
from flowyard.sdk.retries import retry_delay
from flowyard.sdk.task_inputs import PARENTS, RunLinks, TaskInputs
from flowyard.sdk.timeouts import timed_out_message
from flowyard.sdk.transactions import Transaction
from flowyard.states import (
    AwaitingRetry,
    Completed,
    Crashed,
    Failed,
    Pending,
    Retrying,
    Running,
    State,
    is_state_iterable,
    return_value_to_state,
)

if TYPE_CHECKING:
    from flowyard.sdk.tasks import Task


def failure_message(kind: str, exc: BaseException) -> str:
    return f"{kind} run encountered an exception {type(exc).__name__}: {exc}"


class TaskRunEngine(AttemptLoop):
    """Runs one call of ``task`` with ``args``/``kwargs`` in the flow run ``flow_run``."""

    def __init__(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        wait_for: Any = None,
        flow_run: FlowRunContext | None = None,
    ) -> None:
        self.task = task
        self.flow_run = flow_run if flow_run is not None else get_flow_run_context()
        self.args, self.kwargs, self.wait_for = args, kwargs, wait_for
        key, name = task.task_key, task.name
        self.default_name = (
            self.flow_run.next_task_run_name(key, name) if self.flow_run is not None else name
        )
        # the id is known from the call on, so that futures and graph links carry it
        self.context = TaskRunContext(str(uuid.uuid4()), self.default_name, task=task)
        self.state: State[Any] = Pending()
        self.upstream: list[str] = []
        self.cache_key: str | None = None
        self._cache_lock: CacheLock | None = None  # SERIALIZABLE: held from the lookup on
        self.task_inputs: TaskInputs = {}
        self.result_ref: dict[str, Any] | None = None
        self.transaction: Transaction | None = None  # its own, while it runs
        self.links = self._links()

    def _links(self) -> RunLinks | None:
        """The flow run's links between task runs, when its task runs are recorded."""
        flow_run = self.flow_run
        return flow_run.links if flow_run is not None and flow_run.reporter.records else None

    # -- what the shared attempt loop needs ------------------------------------------------

    label = "Task"

    def _fn(self) -> Any:
        return self.task.fn

    def _timeout(self) -> float | None:
        return self.task.timeout_seconds

    def _sleep(self, seconds: float) -> None:
        self.task._sleep(seconds)

    def _scope(self) -> Any:
        """The task run's context, holding the slots of its tags' concurrency limits, and
        its own transaction (a child of any around the call)."""
        scope = contextlib.ExitStack()
        client = self.flow_run.client if self.flow_run is not None else None
        scope.enter_context(
            tag_slots(client, self.context.tags, self.context.task_run_id, on_wait=self._waiting)
        )
        scope.enter_context(task_run_scope(self.context))
        self.transaction = scope.enter_context(Transaction())
        if self._cache_lock is not None:  # freed as the result is written, or rolled back
            self.transaction.hold(self._cache_lock.free)
            self._cache_lock = None
        return scope

    def _waiting(self, tag: str | None) -> None:
        get_run_logger().info(
            "Task run %r waits for a slot of the concurrency limit of tag %r",
            self.context.task_run_name,
            tag,
        )

    def _on_value(self, value: Any) -> float | None:
        if isinstance(value, State) and value.is_failed():  # retried as a raised exception is
            delay = self._retry(value, f"state: {value!r}")
            if delay is not None:
                return delay
        deferred = self._write_at_commit()
        self._on_success(value, persist=not deferred)
        if self.state.is_completed() and self.transaction is not None:
            self.transaction.stage(
                value, on_rollback_hooks=self.task.on_rollback, on_commit_hooks=self.task.on_commit,
                write=(lambda: self._persist(value)) if deferred else None,
            )  # fmt: skip
        return None

    def _write_at_commit(self) -> bool:
        """Inside a transaction of the user's (or a calling task's), a result is written
        when that transaction commits, as Prefect's; alone, as the task ends."""
        transaction = self.transaction
        return transaction is not None and transaction.get_parent() is not None

    def _log_prints(self) -> bool:
        own = self.task.log_prints
        return own if own is not None else log_prints_enabled()

    # -- steps -----------------------------------------------------------------------------

    def _begin(self) -> bool:
        """Resolve inputs, name and record the run, look up the cache; False if it must not run."""
        parameters = self._resolve_inputs()
        self.context.tags = self.task.tags | current_tags()
        if self.flow_run is not None:
            self.context.tags |= self.flow_run.tags
            self.context.flow_run_id = self.flow_run.flow_run_id
        caller = get_task_run_context()  # a task called from a task
        if self.links is not None and caller is not None and caller.task_run_id:
            self.task_inputs[PARENTS] = [{"input_type": "task_run", "id": caller.task_run_id}]
        if parameters is None:
            self._record(Pending(name="NotReady"))
            return False
        self.context.parameters = parameters
        recorded = False
        try:
            self.context.task_run_name = self._name(parameters)
            self._record(Running())
            recorded = True
            cached = self._cached_state(parameters)
        except Exception as exc:  # a raising name template, cache key function or storage
            if self._cache_lock is not None:
                self._cache_lock.free()
            if not recorded:  # under its default name
                self._record(Running())
            self.state = Failed(data=exc, message=failure_message("Task", exc))
            return False
        if cached is not None:
            self.state = cached
            return False
        self.state = Running()
        return True

    def _resolve_inputs(self) -> dict[str, Any] | None:
        bound = self.task._signature.bind(*self.args, **self.kwargs)
        bound.apply_defaults()
        if self.links is not None:
            self.task_inputs = self.links.inputs(bound.arguments, self.wait_for)
        try:
            if self.wait_for:
                resolve(list(self.wait_for), self.upstream)
            resolved: dict[str, Any] = resolve(dict(bound.arguments), self.upstream)
        except UpstreamTaskError as exc:
            self.state = Pending(name="NotReady", message=str(exc), data=exc)
            return None
        bound.arguments.update(resolved)
        self.args, self.kwargs = bound.args, bound.kwargs
        return resolved

    def _name(self, parameters: dict[str, Any]) -> str:
        template = self.task.task_run_name
        if template is None:
            return self.default_name
        if callable(template):  # it may read flowyard.runtime.task_run, as in Prefect
            wanted = inspect.signature(template).parameters
            with task_run_scope(self.context):
                named = template(**parameters) if wanted else template()
            return checked_name(named, template, "task")
        if not isinstance(template, str):
            raise TypeError(
                f"Expected string or callable for 'task_run_name'; got "
                f"{type(template).__name__} instead."
            )
        return template.format(**parameters)

    def _attempt_starts(self) -> bool:
        if self.state.is_final():
            return False
        self.context.run_count += 1
        if self.context.run_count > 1:
            self.state = Retrying()
        run_hooks(self.task.on_running, self.task, self.context, self.state)  # every attempt
        return True

    def _on_success(self, value: Any, persist: bool = True) -> None:
        if isinstance(value, State) or is_state_iterable(value):
            self.state = return_value_to_state(value)
            return
        try:
            if persist:
                self._persist(value)
        except Exception as exc:
            self._on_exception(exc, retry=False)
            return
        self.state = Completed(data=value, cache_key=self.cache_key)

    def _on_exception(self, exc: Exception, retry: bool = True) -> float | None:
        """Record a failed attempt; the delay before the next one, or None when final."""
        failed = failed_state("Task", exc)
        delay = self._retry(failed, f"exception {exc!r}") if retry else None
        if delay is None:
            self.state = failed
            get_run_logger().error("Task run failed with exception %r\n%s", exc, _trace(exc))
            if self.transaction is not None:  # and so the transactions around it, as Prefect's
                self.transaction.rollback()
        return delay

    def _retry(self, failed: State[Any], what: str) -> float | None:
        """The delay before the next attempt (the run now AwaitingRetry), or None when the
        failure is final: no retries left, or ``retry_condition_fn`` says no."""
        task, run_count = self.task, self.context.run_count
        if run_count > task.retries or not self._should_retry(failed):
            return None
        delay = retry_delay(task.retry_delays, run_count, task.retry_jitter_factor)
        get_run_logger().warning(
            "Task run failed with %s - Retry %d/%d will start %s second(s) from now",
            what, run_count, task.retries, round(delay, 3),
        )  # fmt: skip
        self.state = AwaitingRetry(message=failed.message)
        return delay

    def _should_retry(self, failed: State[Any]) -> bool:
        condition = self.task.retry_condition_fn
        if condition is None:
            return True
        try:
            verdict = condition(self.task, self.context, failed)
            if inspect.isawaitable(verdict):  # an async condition is awaited, as in Prefect
                verdict = wait_for_awaitable(verdict)
            return bool(verdict)
        except Exception:
            get_run_logger().error("retry_condition_fn raised; not retrying", exc_info=True)
            return False

    def _on_crash(self, exc: BaseException) -> None:
        self.state = Crashed(data=exc, message=f"Execution was interrupted: {type(exc).__name__}")
        self._finish()

    # -- cache and results -----------------------------------------------------------------

    def _cached_state(self, parameters: dict[str, Any]) -> State[Any] | None:
        policy = self.task.effective_cache_policy
        if policy is None:
            return None
        self.cache_key = self._cache_key(policy, parameters)
        if self.cache_key is None:
            return None
        self._cache_lock = cache_lock(policy, self.cache_key)
        if self._cache_lock is not None:
            self._cache_lock.take()
        if self.task.refresh_cache:
            return None
        store = self.task.result_store()
        record = store.read(self.cache_key)
        if record is None:
            return None
        if self._cache_lock is not None:  # a hit: nothing to write
            self._cache_lock.free()
            self._cache_lock = None
        if self.links is not None:
            self.result_ref = reference(store, record)
        return Completed(
            name="Cached", data=record.value, cache_key=self.cache_key,
            cache_expiration=record.expiration,
        )  # fmt: skip

    def _cache_key(self, policy: CachePolicy, parameters: dict[str, Any]) -> str | None:
        """The policy's key, computed in the task run's context; a policy that raises
        (inputs it cannot hash) is logged, as Prefect does, and the task runs without one."""
        flow_run = self.flow_run
        with task_run_scope(self.context):
            try:
                return policy.compute_key(
                    task_ctx=self.context,
                    inputs=parameters,
                    flow_parameters=flow_run.parameters if flow_run else {},
                )
            except Exception:
                get_run_logger().exception(
                    "Error encountered when computing cache key - result will not be persisted."
                )
                return None

    def _persist(self, value: Any) -> None:
        if not self.task.should_persist:
            return
        expiration = None
        if self.task.cache_expiration is not None:
            expiration = datetime.now(UTC) + self.task.cache_expiration
        key = self.cache_key or uuid.uuid4().hex
        owner = f"task run {self.context.task_run_name!r} of task {self.task.name!r}"
        store = self.task.result_store()
        record = store.write(key, value, expiration=expiration, owner=owner)
        if self.links is not None:
            self.result_ref = reference(store, record)

    # -- the end ---------------------------------------------------------------------------

    def _record(self, state: State[Any]) -> None:
        flow_run = self.flow_run
        if flow_run is None or not flow_run.reporter.records:
            return
        from flowyard.schemas import TaskRunCreate
        from flowyard.sdk.labels import task_run_document

        body = task_run_document(
            TaskRunCreate,
            {
                "id": self.context.task_run_id,
                "flow_run_id": flow_run.flow_run_id,
                "name": self.context.task_run_name,
                "task_key": self.task.task_key,
                "state": state.type,
                "parameters": _summarize(masked(self.context.parameters, self.task.fn)),
                "tags": sorted(self.context.tags),
                "task_version": self.task.version,
                "task_inputs": self.task_inputs,
            },
            task=self.task.task_key,
        )
        if body is None:
            return
        flow_run.reporter.start_task_run(body)

    def _finish(self) -> State[Any]:
        state = self.state
        state.task_run_id = self.context.task_run_id  # a run's state from now on
        with task_run_scope(self.context):
            logger = get_run_logger()
            if state.is_failed() or state.is_crashed():
                logger.error("Finished in state %r", state)
            else:
                logger.info("Finished in state %r", state)
            self._report(state)
            if state.is_completed():
                run_hooks(self.task.on_completion, self.task, self.context, state)
            elif state.is_failed():
                run_hooks(self.task.on_failure, self.task, self.context, state)
        return state

    def _report(self, state: State[Any]) -> None:
        flow_run, task_run_id = self.flow_run, self.context.task_run_id
        if flow_run is None or not flow_run.reporter.records or not task_run_id:
            return
        from flowyard.schemas import TaskRunUpdate
        from flowyard.sdk.labels import task_run_document

        update = task_run_document(
            TaskRunUpdate,
            {
                "state": state.type,
                "message": state.message,
                "state_name": state.name,
                "run_count": self.context.run_count,
                "cache_key": self.cache_key,
                "result": self.result_ref,
            },
            task=self.task.task_key,
        )
        if update is not None:
            flow_run.reporter.finish_task_run(task_run_id, update)
        flow_run.links.produced(task_run_id, state)


def failed_state(kind: str, exc: Exception) -> State[Any]:
    """The Failed state of an exception; ``TimedOut`` for a ``TimeoutError``, as in Prefect."""
    if isinstance(exc, TimeoutError):
        return Failed(data=exc, message=timed_out_message(kind, exc), name="TimedOut")
    return Failed(data=exc, message=failure_message(kind, exc))


def _trace(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)).rstrip()


def _summarize(parameters: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by name, as JSON scalars or a short ``repr``."""
    return {name: _scalar(value) for name, value in parameters.items()}


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value[:200]
    return repr(value)[:200]


def checked_name(name: Any, template: Any, kind: str) -> str:
    """What a callable run name gave: a string, else Prefect's TypeError."""
    if not isinstance(name, str):
        raise TypeError(
            f"Callable {template!r} for '{kind}_run_name' returned type {type(name).__name__} "
            "but a string is required."
        )
    return name
