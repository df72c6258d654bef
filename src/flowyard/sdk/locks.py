"""Locks on result records, which a ``SERIALIZABLE`` transaction takes on its key (as
``prefect.locking``): a second transaction on the same key waits for the first to commit
or roll back, then finds its record.

``MemoryLockManager`` holds its locks in this process (one per process, as Prefect's: every
``MemoryLockManager()`` is the same one); ``FileSystemLockManager(lock_files_directory)``
holds them across processes on one machine (or a shared file system with working
``flock``), through ``filelock``. An OS lock ends with the process that holds it, so a
crashed run never leaves a key locked.

A lock has a ``holder`` (a transaction's id); only its holder releases it, from any
thread. ``acquire_timeout`` bounds the wait (``0``: do not wait; ``None``: wait as long as
it takes); a memory lock's ``hold_timeout`` frees it by itself after so many seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from flowyard.sdk.results import safe_name


class LockManager:
    """What a lock manager does (Prefect's ``LockManager`` protocol); a manager of one's
    own implements ``_take`` and the four others."""

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``holder`` (at once if it holds it already); False
        when ``acquire_timeout`` passed first."""
        if self.is_lock_holder(key, holder):
            return True
        return self._take(key, holder, acquire_timeout, hold_timeout)

    def _take(self, key: str, holder: str, timeout: float | None, hold: float | None) -> bool:
        raise NotImplementedError

    def release_lock(self, key: str, holder: str) -> None:
        """Free the lock; ``ValueError`` when it is not held, or held by another."""
        raise NotImplementedError

    def is_locked(self, key: str) -> bool:
        raise NotImplementedError

    def is_lock_holder(self, key: str, holder: str) -> bool:
        raise NotImplementedError

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until ``key`` is free; False when ``timeout`` passed first."""
        raise NotImplementedError


def _not_held(key: str, holder: str, locked: bool) -> ValueError:
    if not locked:
        return ValueError(f"No lock for transaction with key {key}")
    return ValueError(f"No lock held by {holder} for transaction with key {key}")


@dataclass
class _Held:
    holder: str
    expires: float | None  # time.monotonic() when it frees itself


class MemoryLockManager(LockManager):
    """Locks held in this process's memory: for threads of one process."""

    _instance: MemoryLockManager | None = None
    _made = threading.Lock()

    def __new__(cls) -> MemoryLockManager:
        with cls._made:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._changed = threading.Condition()
                instance._locks = {}
                cls._instance = instance
            return cls._instance

    _changed: threading.Condition
    _locks: dict[str, _Held]

    def __reduce__(self) -> tuple[type[MemoryLockManager], tuple[()]]:
        return (MemoryLockManager, ())  # unpickled: the receiving process's one

    def _current(self, key: str) -> _Held | None:
        held = self._locks.get(key)
        if held is not None and held.expires is not None and held.expires <= time.monotonic():
            del self._locks[key]
            return None
        return held

    def _take(self, key: str, holder: str, timeout: float | None, hold: float | None) -> bool:
        with self._changed:
            if not self._wait_free(key, timeout, holder):
                return False
            expires = None if hold is None else time.monotonic() + hold
            self._locks[key] = _Held(holder, expires)
            return True

    def _wait_free(self, key: str, timeout: float | None, holder: str | None = None) -> bool:
        """Wait (holding ``_changed``) until ``key`` is free or held by ``holder``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (held := self._current(key)) is not None and held.holder != holder:
            now = time.monotonic()
            wakes = [t for t in (deadline, held.expires) if t is not None]
            if deadline is not None and now >= deadline:
                return False
            self._changed.wait(min(wakes) - now if wakes else None)
        return True

    def release_lock(self, key: str, holder: str) -> None:
        with self._changed:
            held = self._current(key)
            if held is None or held.holder != holder:
                raise _not_held(key, holder, locked=True)  # Prefect's words for either case
            del self._locks[key]
            self._changed.notify_all()

    def is_locked(self, key: str) -> bool:
        with self._changed:
            return self._current(key) is not None

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._changed:
            held = self._current(key)
            return held is not None and held.holder == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        with self._changed:
            return self._wait_free(key, timeout)


@dataclass
class _HeldFile:
    holder: str
    lock: filelock.BaseFileLock


class FileSystemLockManager(LockManager):
    """Locks held as ``flock``s on files in ``lock_files_directory``: for processes of one
    machine. Its locks are this process's to release; a lock outlives no process."""

    _held: dict[Path, _HeldFile] = {}  # this process's locks, whichever manager took them
    _held_lock = threading.Lock()

    def __init__(self, lock_files_directory: str | Path) -> None:
        self.lock_files_directory = Path(lock_files_directory).expanduser().resolve()

    def __repr__(self) -> str:
        return f"FileSystemLockManager({str(self.lock_files_directory)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileSystemLockManager):
            return NotImplemented
        return self.lock_files_directory == other.lock_files_directory

    def __hash__(self) -> int:
        return hash(self.lock_files_directory)

    def _path(self, key: str) -> Path:
        return self.lock_files_directory / f"{safe_name(key)}.lock"

    def _file_lock(self, key: str) -> filelock.BaseFileLock:
        self.lock_files_directory.mkdir(parents=True, exist_ok=True)
        # a lock object of its own each time: flock excludes other objects of this process too
        return filelock.FileLock(self._path(key), thread_local=False, is_singleton=False)

    def _take(self, key: str, holder: str, timeout: float | None, hold: float | None) -> bool:
        if hold is not None:
            raise ValueError(
                "FileSystemLockManager takes no hold_timeout: its locks last until released "
                "or until the process holding them ends"
            )
        lock = self._file_lock(key)
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except filelock.Timeout:
            return False
        with self._held_lock:
            self._held[self._path(key)] = _HeldFile(holder, lock)
        return True

    def release_lock(self, key: str, holder: str) -> None:
        path = self._path(key)
        with self._held_lock:
            held = self._held.get(path)
            if held is None or held.holder != holder:
                raise _not_held(key, holder, held is not None or self._taken_elsewhere(key))
            del self._held[path]
        held.lock.release()

    def is_locked(self, key: str) -> bool:
        with self._held_lock:
            if self._path(key) in self._held:
                return True
        return self._taken_elsewhere(key)

    def _taken_elsewhere(self, key: str) -> bool:
        return not self.wait_for_lock(key, timeout=0)

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._held_lock:
            held = self._held.get(self._path(key))
            return held is not None and held.holder == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        probe = self._file_lock(key)
        try:
            probe.acquire(timeout=-1 if timeout is None else timeout)
        except filelock.Timeout:
            return False
        probe.release()
        return True


def lock_manager_of(store: Any) -> LockManager | None:
    """The lock manager of a result store (None: it cannot lock)."""
    return getattr(store, "lock_manager", None)


_LOCKING = ("acquire_lock", "release_lock", "is_locked", "is_lock_holder", "wait_for_lock")


def checked_lock_manager(value: Any) -> Any:
    """``value`` when it is a lock manager (or None), else a clear ``TypeError``: a path is
    not one (where Prefect fails with "'str' object has no attribute 'acquire_lock'")."""
    if value is None or all(callable(getattr(value, name, None)) for name in _LOCKING):
        return value
    hint = (
        f" (for lock files in that directory: FileSystemLockManager({str(value)!r}))"
        if isinstance(value, str | Path)
        else ""
    )
    raise TypeError(
        "lock_manager must be a lock manager from flowyard.locking (MemoryLockManager() or "
        f"FileSystemLockManager(directory)), not {type(value).__name__}{hint}"
    )
