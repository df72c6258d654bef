"""``flowyard.locking``: the lock managers a ``ResultStore`` takes for ``SERIALIZABLE``
transactions (Prefect's ``prefect.locking.memory``, ``.filesystem`` and ``.protocol``)."""

from flowyard.sdk.locks import FileSystemLockManager, LockManager, MemoryLockManager

__all__ = ["FileSystemLockManager", "LockManager", "MemoryLockManager"]
