"""Transactions: group task runs so that their side effects are committed or undone together.

    with transaction():
        write_file(...)      # @write_file.on_rollback: delete the file
        check_file(...)      # raises: write_file's rollback hooks run, in reverse order

Every task run is a transaction of its own, a child of the one around it. A task that
completes stages its ``on_commit`` and ``on_rollback`` hooks and its persisted result;
its transaction commits at once when nothing encloses it (its commit hooks run as it ends),
else when the outermost transaction around it ends well, and only then is its result
written. A block that raises rolls back: the rollback hooks of every task it staged run,
the last first, and the error goes on. A task that fails rolls back the transaction around
it at once, also when its caller catches the error or asked for its state. ``txn.set(name, value)``
and ``txn.get(name)`` share values between a block, its tasks and their hooks (a child
sees its parents' values).

With a ``key``, a committed transaction leaves a record (its staged value) in result
storage; a later ``transaction(key=...)`` with the same key starts committed, so
``if not txn.is_committed():`` runs a block once. With
``isolation_level=IsolationLevel.SERIALIZABLE`` (inherited by the transactions inside) and
a ``store=ResultStore(lock_manager=...)``, a keyed transaction holds the lock on its key
from its start to its commit or rollback: a second one on the same key waits, then starts
committed, so that two concurrent runs compute once (``locks.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import uuid
from collections.abc import Callable, Sequence
from contextvars import ContextVar, Token
from enum import StrEnum
from typing import Any

from flowyard.errors import ConfigurationError
from flowyard.sdk.hooks import wait_for_awaitable
from flowyard.sdk.locks import lock_manager_of
from flowyard.sdk.logs import RUN_LOGGER_NAME, get_run_logger

TransactionHook = Callable[["Transaction"], object]


class CommitMode(StrEnum):
    EAGER = "EAGER"  # commit as the block ends, even inside another transaction
    LAZY = "LAZY"  # let the outermost transaction commit (the default)
    OFF = "OFF"  # never commit: roll back when nothing else committed it


class IsolationLevel(StrEnum):
    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class TransactionState(StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


_NOT_SET: Any = object()
_current: ContextVar[Transaction | None] = ContextVar("flowyard_transaction", default=None)


def get_transaction() -> Transaction | None:
    """The innermost transaction around the calling code (a task's own, inside a task)."""
    return _current.get()


class Transaction:
    """One transaction, opened as a context manager: ``with transaction(...) as txn:``."""

    def __init__(
        self,
        key: str | None = None,
        store: Any = None,
        commit_mode: CommitMode | None = None,
        isolation_level: IsolationLevel | None = None,
        overwrite: bool = False,
        write_on_commit: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> None:
        self.key = key
        self.store = store
        self.commit_mode = commit_mode
        self.isolation_level = isolation_level
        self.overwrite = overwrite
        self.write_on_commit = write_on_commit
        self._logger = logger  # made when first needed: most task runs stage no hooks
        self.state = TransactionState.PENDING
        self.children: list[Transaction] = []
        self.on_commit_hooks: list[TransactionHook] = []
        self.on_rollback_hooks: list[TransactionHook] = []
        self._values: dict[str, Any] = {}
        self._staged_value: Any = None
        self._writes: list[Callable[[], object]] = []  # results written when this commits
        self._parent: Transaction | None = None
        self._token: Token[Transaction | None] | None = None
        self._holder = uuid.uuid4().hex  # this transaction, as the holder of its key's lock
        self._held: list[Callable[[], object]] = []  # other locks it holds till it ends
        self._closed = False  # its block has ended
        self._loop: asyncio.AbstractEventLoop | None = None  # an async block's: hooks await there

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.value})"

    @property
    def logger(self) -> logging.Logger | logging.LoggerAdapter[Any]:
        if self._logger is None:
            self._logger = _logger()
        return self._logger

    # -- values shared with tasks and hooks --------------------------------------------------

    def set(self, name: str, value: Any) -> None:
        self._values[name] = value

    def get(self, name: str, default: Any = _NOT_SET) -> Any:
        """The value set under ``name`` here or in a parent transaction."""
        here: Transaction | None = self
        while here is not None:
            if name in here._values:
                return here._values[name]
            here = here._parent
        if default is _NOT_SET:
            raise ValueError(f"Could not retrieve value for unknown key: {name}")
        return default

    # -- states ------------------------------------------------------------------------------

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_pending(self) -> bool:
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def get_parent(self) -> Transaction | None:
        return self._parent

    def add_child(self, child: Transaction) -> None:
        self.children.append(child)

    # -- the block ---------------------------------------------------------------------------

    def __enter__(self) -> Transaction:
        self._prepare()
        return self._begin()

    def _prepare(self) -> None:
        """Take the commit mode and isolation level (the parent's unless given)."""
        self._parent = _current.get()
        if self.commit_mode is None:
            self.commit_mode = self._parent.commit_mode if self._parent else CommitMode.LAZY
        if self.isolation_level is None:
            parent = self._parent
            self.isolation_level = parent.isolation_level if parent else None
            self.isolation_level = self.isolation_level or IsolationLevel.READ_COMMITTED
        self._check_isolation_level()
        self.state = TransactionState.ACTIVE

    def _begin(self) -> Transaction:
        """Take the key's lock (SERIALIZABLE), start committed when its record exists."""
        if self._locks() and (manager := lock_manager_of(self._store())) is not None:
            manager.acquire_lock(self.key or "", self._holder)
        if self.key and self._store() is not None and not self.overwrite and self.read_record():
            self.state = TransactionState.COMMITTED
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._settle(exc_type)
        self._reset()

    def _settle(self, exc_type: type[BaseException] | None) -> None:
        """Commit or roll back as the block ends (a child waits for its parent)."""
        if exc_type is not None:
            self.rollback()
            return
        if self.commit_mode is CommitMode.EAGER:
            self.commit()
        if self._parent is not None:  # the parent commits or rolls back its children
            return
        if self.commit_mode is CommitMode.OFF:
            self.rollback()
        else:
            self.commit()

    def _check_isolation_level(self) -> None:
        store = self._store()
        supports = getattr(store, "supports_isolation_level", None)
        level = IsolationLevel(self.isolation_level or IsolationLevel.READ_COMMITTED)
        if self.key and supports is not None and not supports(level):
            raise unsupported_level(level)

    def _locks(self) -> bool:
        """Whether this transaction holds the lock on its key while it is open."""
        return bool(self.key) and self.isolation_level == IsolationLevel.SERIALIZABLE

    @property
    def holder(self) -> str:
        """This transaction's name as the holder of locks."""
        return self._holder

    def hold(self, release: Callable[[], object]) -> None:
        """Call ``release`` when this transaction commits or rolls back (a task run's lock
        on its cache key, held until its result is written)."""
        self._held.append(release)

    def _release(self) -> None:
        manager = lock_manager_of(self.store) if self._locks() else None
        key = self.key or ""
        if manager is not None and manager.is_lock_holder(key, self._holder):
            manager.release_lock(key, self._holder)
        held, self._held = self._held, []
        for release in held:
            release()
        for child in self.children:  # those a committed-at-start parent never commits
            child._release()

    def _reset(self) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        parent = self._parent
        if parent is not None:
            parent.add_child(self)
            if self.is_rolled_back():
                parent.rollback()
            if parent._closed:  # it ended first (an asyncio task outlived it): nobody will
                self._release()
        self._closed = True

    # -- staging, committing, rolling back ------------------------------------------------

    def stage(
        self,
        value: Any,
        on_rollback_hooks: Sequence[TransactionHook] = (),
        on_commit_hooks: Sequence[TransactionHook] = (),
        write: Callable[[], object] | None = None,
    ) -> None:
        """Keep ``value`` (the record a key writes), the hooks to run at the outcome, and
        ``write``: a task's result, written at commit (not at all on a rollback)."""
        if self.is_committed():
            return
        if write is not None:
            self._writes.append(write)
        if on_rollback_hooks or on_commit_hooks:
            _ = self.logger  # the stager's run logger: its hooks may run later, elsewhere
        self._staged_value = value
        self.on_rollback_hooks.extend(on_rollback_hooks)
        self.on_commit_hooks.extend(on_commit_hooks)
        self.state = TransactionState.STAGED

    def commit(self) -> bool:
        """Commit the children, run the commit hooks, write the key's record; True when
        this call committed. A failing hook rolls the transaction back instead."""
        if self.is_committed() or self.is_rolled_back():
            self._release()
            return False
        try:
            for child in self.children:
                child.commit()
            for write in self._writes:
                write()
            for hook in self.on_commit_hooks:
                self._run_hook(hook, "commit")
            if self.key and self.write_on_commit and (store := self._store()) is not None:
                self._check_unlocked(store)
                store.write(self.key, self._staged_value, expiration=None, owner="transaction")
        except Exception:
            self.logger.exception(
                "An error was encountered while committing transaction %r", self.key
            )
            self.rollback()
            return False
        self.state = TransactionState.COMMITTED
        self._release()
        return True

    def _check_unlocked(self, store: Any) -> None:
        """A record another transaction holds the lock on is not written (as Prefect's)."""
        manager = lock_manager_of(store)
        key = self.key or ""
        if manager and manager.is_locked(key) and not manager.is_lock_holder(key, self._holder):
            raise RuntimeError(
                f"Cannot write to result record with key {key} because it is locked by "
                "another holder."
            )

    def rollback(self) -> bool:
        """Run the rollback hooks (the last staged first), then the children's; True when
        this call rolled back."""
        if self.is_committed() or self.is_rolled_back():
            self._release()
            return False
        try:
            for hook in reversed(self.on_rollback_hooks):
                self._run_hook(hook, "rollback")
            self.state = TransactionState.ROLLED_BACK
            for child in reversed(self.children):
                child.rollback()
        except Exception:
            self.logger.exception(
                "An error was encountered while rolling back transaction %r", self.key
            )
            return False
        finally:
            self._release()
        return True

    def read(self) -> Any:
        """The value recorded under this transaction's key (None without one)."""
        record = self.read_record()
        return None if record is None else record.value

    def read_record(self) -> Any:
        """The record under the key; a record another transaction holds the lock on is
        read once that one has committed or rolled back."""
        store = self._store()
        if not self.key or store is None:
            return None
        if lock_manager_of(store) is not None:
            return store.read(self.key, holder=self._holder)
        return store.read(self.key)

    def _store(self) -> Any:
        if self.store is None and self.key:
            from flowyard.sdk.results import PickleSerializer, ResultStore, default_storage

            self.store = ResultStore(default_storage(), PickleSerializer())
        return self.store

    def _run_hook(self, hook: TransactionHook, kind: str) -> None:
        name = getattr(hook, "__name__", repr(hook))
        self.logger.info("Running %s hook %r", kind, name)
        try:
            outcome = hook(self)
            if inspect.isawaitable(outcome):  # an async hook is awaited, as in Prefect
                self._await(outcome)
        except Exception:
            self.logger.error("An error was encountered while running %s hook %r", kind, name)
            raise
        self.logger.info("%s hook %r finished running successfully", kind.capitalize(), name)

    def _await(self, awaitable: Any) -> None:
        """Await a hook: on the async block's event loop when called from another thread,
        else on a loop of its own."""
        loop = self._loop
        if loop is None or loop.is_closed() or _running_loop() is loop:
            wait_for_awaitable(awaitable)
            return

        async def outcome() -> None:
            await awaitable

        asyncio.run_coroutine_threadsafe(outcome(), loop).result()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


transaction = Transaction
"""``with transaction(key=..., commit_mode=...) as txn:`` opens a transaction around a
block (as Prefect's ``transaction()``); a ``Transaction`` is its own context manager."""


class AsyncTransaction(Transaction):
    """``async with atransaction(...) as txn:``: a transaction whose wait for its key's
    lock does not block the event loop. Its commit or rollback runs in a thread (a sync
    hook there, as Prefect's); an async hook is awaited on the block's event loop."""

    async def __aenter__(self) -> AsyncTransaction:
        self._loop = asyncio.get_running_loop()
        self._prepare()
        manager = lock_manager_of(self._store()) if self.key else None
        if manager is not None:  # the lock taken, or a locked record waited for, off the loop
            key = self.key or ""
            if self._locks():
                await asyncio.to_thread(manager.acquire_lock, key, self._holder)
            else:
                await asyncio.to_thread(manager.wait_for_lock, key)
        self._begin()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: Any) -> None:
        await asyncio.to_thread(self._settle, exc_type)
        self._reset()  # on the loop: the context variable was set here


atransaction = AsyncTransaction
"""``async with atransaction(key=...) as txn:`` (Prefect's ``atransaction()``)."""


def unsupported_level(level: IsolationLevel) -> ConfigurationError:
    return ConfigurationError(
        f"Isolation level {level.name} is not supported by provided configuration. "
        "Please ensure you've provided a lock file directory or lock manager when "
        "using the SERIALIZABLE isolation level."
    )


def _logger() -> logging.Logger | logging.LoggerAdapter[Any]:
    """The run's logger inside a run, else a plain one."""
    from flowyard.sdk.context import get_flow_run_context

    if get_flow_run_context() is not None:
        return get_run_logger()
    return logging.getLogger(f"{RUN_LOGGER_NAME}.transactions")  # as prefect.transactions
