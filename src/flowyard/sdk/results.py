"""Results: serializers, result storage (local files, or a block such as ``S3Bucket``) and
the result store of cache records.

A record is one file named by its key (hashed when not a safe file name): one JSON
document in Prefect 3's layout (``metadata`` and ``result``; see ``result_records.py``),
with the serializer, expiration, owner and signature in its metadata.
Files are written to a temporary name and renamed, so another process never reads half a
record. The default storage is ``$FLOWYARD_HOME/storage``. By default a value is written
as JSON when it is plain JSON data (read back exactly), else pickled; a record is
unpickled only when its HMAC signature (``signing.py``) is valid, so that whoever can
write to a storage, or name a record, cannot make a reader run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from flowyard.errors import FlowyardError, MissingResult, SerializationError, UntrustedResult
from flowyard.sdk import result_records, signing

if TYPE_CHECKING:
    from flowyard.sdk.locks import LockManager

log = structlog.get_logger()

_SAFE_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}")
MAX_JSON_DEPTH = 100
LOCAL_STORAGE_TYPE = "local-file-system"


class Serializer(Protocol):
    type: str

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """Any picklable Python object; read back only from signed records."""

    type = "pickle"

    def dumps(self, obj: Any) -> bytes:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)


class JSONSerializer:
    """JSON: readable by other tools; only JSON-compatible results."""

    type = "json"

    def dumps(self, obj: Any) -> bytes:
        return json.dumps(obj).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)


class DefaultSerializer:
    """The default: JSON when the value is plain JSON data (it reads back exactly, and
    reading it runs no code), pickle otherwise. Each record names the one it used."""

    type = "default"

    def choose(self, obj: Any) -> Serializer:
        return JSONSerializer() if plain_json(obj) else PickleSerializer()

    def dumps(self, obj: Any) -> bytes:
        return self.choose(obj).dumps(obj)

    def loads(self, data: bytes) -> Any:
        raise SerializationError("a record names the serializer it was written with")


def plain_json(value: Any, depth: int = 0) -> bool:
    """Whether JSON gives ``value`` back exactly: None, bool, int, str, finite floats, and
    lists and str-keyed dicts of those (exact types: no tuples, subclasses, enums)."""
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return True
    if kind is float:
        return value == value and value not in (float("inf"), float("-inf"))
    if depth >= MAX_JSON_DEPTH:
        return False
    if kind is list:
        return all(plain_json(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(k) is str and plain_json(v, depth + 1) for k, v in value.items())
    return False


_SERIALIZERS: dict[str, type[PickleSerializer] | type[JSONSerializer]] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
}


def get_serializer(value: str | Serializer | None) -> Serializer:
    if value is None or value == DefaultSerializer.type:
        return DefaultSerializer()
    if isinstance(value, str):
        try:
            return _SERIALIZERS[value]()
        except KeyError:
            raise ValueError(f"unknown serializer {value!r}; use 'pickle' or 'json'") from None
    return value


class ResultStorage(Protocol):
    """Where persisted results live: a local folder, or a block such as ``S3Bucket``."""

    def write(self, key: str, data: bytes) -> object: ...

    def read(self, key: str) -> bytes | None: ...

    def location(self, key: str) -> str: ...


class LocalFileSystem:
    """Result storage in a local folder."""

    def __init__(self, basepath: str | os.PathLike[str], saved_name: str | None = None) -> None:
        self.basepath = Path(basepath).expanduser()
        self.saved_name = saved_name
        """The name of the ``local-file-system`` block it was loaded from, if any."""

    def __repr__(self) -> str:
        return f"LocalFileSystem({str(self.basepath)!r})"

    def path(self, key: str) -> Path:
        return self.basepath / safe_name(key)

    def location(self, key: str) -> str:
        return str(self.path(key))

    def write(self, key: str, data: bytes) -> Path:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            return None


def safe_name(key: str) -> str:
    """``key`` itself when it is a safe file name, else its SHA-256."""
    return key if _SAFE_KEY.fullmatch(key) else hashlib.sha256(key.encode()).hexdigest()


def default_storage() -> LocalFileSystem:
    """``$FLOWYARD_HOME/storage`` (settings are read only when results are persisted)."""
    from flowyard.settings import Settings

    return LocalFileSystem(Settings().home / "storage")


def get_storage(value: str | os.PathLike[str] | ResultStorage | None) -> ResultStorage:
    """A storage object (``LocalFileSystem``, an ``S3Bucket`` block), a saved block named
    ``"<block type>/<name>"`` as in Prefect (``"s3-bucket/results"``), a folder path, or
    the default folder."""
    if value is None:
        return default_storage()
    if isinstance(value, str) and _block_type_of(value) is not None:
        return _saved_block_storage(value)
    if isinstance(value, str | os.PathLike):
        return LocalFileSystem(value)
    return _block_storage(value)


def names_saved_block(value: str) -> bool:
    """Whether ``value`` is ``"<block type>/<name>"`` of a type that can hold results."""
    return _block_type_of(value) is not None


def saved_block_name(storage: ResultStorage) -> str | None:
    """``"<block type>/<name>"`` of the saved block ``storage`` was loaded from, if any."""
    if isinstance(storage, LocalFileSystem):
        slug: str | None = LOCAL_STORAGE_TYPE
    else:
        slug = getattr(storage, "block_type_slug", None)
    name = getattr(storage, "saved_name", None)
    return f"{slug}/{name}" if slug and name else None


def _block_type_of(value: str) -> str | None:
    """The block type slug ``value`` starts with, when it names a saved block of a type
    that can hold results (``secret/results`` stays a folder)."""
    slug, _, name = value.partition("/")
    if not name or "/" in name:
        return None
    from flowyard.blocks.registry import block_types

    block_type = block_types().get(slug)
    if block_type is None:
        return None
    holds_results = slug == LOCAL_STORAGE_TYPE or (
        hasattr(block_type, "write") and hasattr(block_type, "read")
    )
    return slug if holds_results else None


def _saved_block_storage(value: str) -> ResultStorage:
    from flowyard.blocks.registry import load_block_type

    slug, _, name = value.partition("/")
    try:
        block = load_block_type(slug).load(name)
    except FlowyardError as exc:
        raise ValueError(f"result_storage {value!r}: cannot load the block: {exc}") from None
    return _block_storage(block)


def _block_storage(block: Any) -> ResultStorage:
    """Storage blocks store as they are; a ``local-file-system`` block is its folder."""
    if getattr(block, "block_type_slug", None) == LOCAL_STORAGE_TYPE:
        return LocalFileSystem(block.basepath, saved_name=block.saved_name)
    if not (hasattr(block, "write") and hasattr(block, "read")):
        raise ValueError(f"{block!r} cannot hold results (it has no read and write)")
    storage: ResultStorage = block
    return storage


@dataclass(frozen=True)
class ResultRecord:
    key: str
    value: Any
    expiration: datetime | None
    location: str | None = None
    serializer: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expiration is not None and now >= self.expiration


class ResultStore:
    """Reads and writes result records in one storage (the default one unless given) with
    one serializer (pickle unless given), signed with the result signing key (this
    process's, unless one is given). With a ``lock_manager`` (``flowyard.locking``) it
    serves ``SERIALIZABLE`` transactions, and a read waits for a locked record's holder."""

    def __init__(
        self,
        storage: ResultStorage | None = None,
        serializer: Serializer | None = None,
        signing_key: bytes | None = None,
        *,
        lock_manager: LockManager | None = None,
        result_storage: ResultStorage | None = None,  # Prefect's name for ``storage``
    ) -> None:
        self.storage = storage or result_storage or default_storage()
        self.serializer = serializer or PickleSerializer()
        self._signing_key = signing_key
        from flowyard.sdk.locks import checked_lock_manager

        self.lock_manager = checked_lock_manager(lock_manager)

    def supports_isolation_level(self, level: str) -> bool:
        """READ_COMMITTED always; SERIALIZABLE with a lock manager (as Prefect's)."""
        if level == "READ_COMMITTED":
            return True
        if level == "SERIALIZABLE":
            return self.lock_manager is not None
        raise ValueError(f"Unsupported isolation level: {level}")

    @property
    def signing_key(self) -> bytes:
        if self._signing_key is None:
            self._signing_key = signing.configured_key()
        return self._signing_key

    def write(
        self, key: str, value: Any, *, expiration: datetime | None, owner: str
    ) -> ResultRecord:
        """Persist ``value``; ``SerializationError`` names ``owner`` when it cannot be."""
        serializer = self.serializer
        if isinstance(serializer, DefaultSerializer):
            serializer = serializer.choose(value)
        try:
            payload = serializer.dumps(value)
        except Exception as exc:
            raise SerializationError(
                f"the result of {owner} cannot be persisted with the {serializer.type} "
                f"serializer: {type(exc).__name__}: {exc}"
            ) from exc
        name = safe_name(key)
        where = self.storage.location(name)
        record = result_records.encode(
            name, location=where, serializer=serializer.type, owner=owner, payload=payload,
            expiration=expiration.isoformat() if expiration else None, key=self.signing_key,
        )  # fmt: skip
        self.storage.write(name, record)
        return ResultRecord(key, value, expiration, where, serializer.type)

    def read(
        self, key: str, now: datetime | None = None, *, holder: str | None = None
    ) -> ResultRecord | None:
        """The record under ``key``, or None when missing, expired, unreadable or refused
        (a cache lookup: a refused record is computed again, with a warning). A record
        locked by another than ``holder`` is read once its lock is released."""
        lock_manager = self.lock_manager
        if lock_manager is not None and not (holder and lock_manager.is_lock_holder(key, holder)):
            lock_manager.wait_for_lock(key)
        try:
            return self.load(key, now)
        except MissingResult:
            return None
        except UntrustedResult as exc:
            log.warning("result_record_refused", key=key, reason=str(exc))
            return None

    def load(self, key: str, now: datetime | None = None) -> ResultRecord:
        """The record under ``key``; ``MissingResult`` when it is missing, expired or
        unreadable, ``UntrustedResult`` when it would be unpickled without a valid
        signature."""
        name = safe_name(key)
        where = self.storage.location(name)
        raw = self.storage.read(name)
        if raw is None:
            raise MissingResult(f"no result at {where!r} (never persisted, or gone)")
        try:
            record = result_records.decode(raw)
            header = record.header
            expiration = header["expiration"] and datetime.fromisoformat(header["expiration"])
            kind = header["serializer"]
        except (ValueError, TypeError, KeyError) as exc:
            raise MissingResult(f"the file at {where!r} is not a result record") from exc
        if expiration and expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        if expiration and (now or datetime.now(UTC)) >= expiration:
            raise MissingResult(f"the result at {where!r} expired at {expiration.isoformat()}")
        serializer = self._serializer_for(kind, where)
        if type(serializer) is not JSONSerializer or signing.FIELD in header:  # noqa: E721
            result_records.verify(self.signing_key, name, record, where)
        try:
            value = serializer.loads(record.payload)
        except Exception as exc:
            raise MissingResult(
                f"the result at {where!r} cannot be read with the {kind} serializer: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        return ResultRecord(key, value, expiration or None, where, kind)

    def _serializer_for(self, kind: Any, where: str) -> Serializer:
        """The serializer a record names: this store's own, or a built-in one."""
        if kind == self.serializer.type:
            return self.serializer
        if kind in _SERIALIZERS:
            return _SERIALIZERS[kind]()
        raise MissingResult(f"the result at {where!r} was written with serializer {kind!r}")
