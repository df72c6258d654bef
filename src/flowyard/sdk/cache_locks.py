"""The lock a cached task run holds on its cache key under ``SERIALIZABLE`` isolation, as
Prefect's: from before its cache lookup until its result is written (its transaction
commits or rolls back), so that concurrent runs with the same key compute once and the
others read the record the first one wrote.

The isolation level is the cache policy's (``policy.configure(isolation_level=...)``), else
that of the transaction around the call; the lock manager is the policy's, else that of
the around transaction's result store (``ResultStore(lock_manager=...)``). Runs inside one
outermost transaction hold the lock as one holder: the same call twice in one block runs
twice (its result is written at the commit) where Prefect 3.9.1's second call waits
forever for the first's lock.
"""

from __future__ import annotations

import uuid
from typing import Any

from flowyard.sdk.locks import LockManager, checked_lock_manager, lock_manager_of
from flowyard.sdk.transactions import (
    IsolationLevel,
    Transaction,
    get_transaction,
    unsupported_level,
)


class CacheLock:
    """One task run's hold on one cache key."""

    def __init__(self, manager: LockManager, key: str, holder: str) -> None:
        self.manager, self.key, self.holder = manager, key, holder

    def take(self) -> None:
        self.manager.acquire_lock(self.key, self.holder)

    def free(self) -> None:
        if self.manager.is_lock_holder(self.key, self.holder):
            self.manager.release_lock(self.key, self.holder)


def cache_lock(policy: Any, key: str) -> CacheLock | None:
    """The lock to take on ``key`` before looking it up, or None under READ_COMMITTED;
    ``ConfigurationError`` for SERIALIZABLE without a lock manager."""
    around = get_transaction()
    level = getattr(policy, "isolation_level", None) or (around and around.isolation_level)
    if IsolationLevel(level or IsolationLevel.READ_COMMITTED) is not IsolationLevel.SERIALIZABLE:
        return None
    manager = checked_lock_manager(getattr(policy, "lock_manager", None))
    if manager is None and around is not None:
        manager = lock_manager_of(around.store)
    if manager is None:
        raise unsupported_level(IsolationLevel.SERIALIZABLE)
    return CacheLock(manager, key, _holder(around))


def _holder(around: Transaction | None) -> str:
    """The outermost transaction around the call, or this run alone."""
    if around is None:
        return f"task-run-{uuid.uuid4().hex}"
    while (parent := around.get_parent()) is not None:
        around = parent
    return f"transaction-{around.holder}"
