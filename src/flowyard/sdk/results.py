"""Results: serializers, result storage (local files, or a block such as ``S3Bucket``) and
the result store of cache records.

A record is one file named by its key (hashed when not a safe file name), holding a JSON
header line (serializer, expiration, task) and then the serialized value. Files are
written to a temporary name and renamed, so another process never reads half a record.
The default storage is ``$FLOWYARD_HOME/storage``.
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
from typing import Any, Protocol

from flowyard.errors import FlowyardError

_SAFE_KEY = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class SerializationError(FlowyardError):
    """Raised when a result cannot be serialized (or read back) for persistence."""


class Serializer(Protocol):
    type: str

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


class PickleSerializer:
    """The default: any picklable Python object."""

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


_SERIALIZERS: dict[str, type[PickleSerializer] | type[JSONSerializer]] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
}


def get_serializer(value: str | Serializer | None) -> Serializer:
    if value is None:
        return PickleSerializer()
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

    def __init__(self, basepath: str | os.PathLike[str]) -> None:
        self.basepath = Path(basepath).expanduser()

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
        return LocalFileSystem(block.basepath)
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

    def expired(self, now: datetime) -> bool:
        return self.expiration is not None and now >= self.expiration


class ResultStore:
    """Reads and writes result records in one storage with one serializer."""

    def __init__(self, storage: ResultStorage, serializer: Serializer) -> None:
        self.storage = storage
        self.serializer = serializer

    def write(
        self, key: str, value: Any, *, expiration: datetime | None, owner: str
    ) -> ResultRecord:
        """Persist ``value``; ``SerializationError`` names ``owner`` when it cannot be."""
        try:
            payload = self.serializer.dumps(value)
        except Exception as exc:
            raise SerializationError(
                f"the result of {owner} cannot be persisted with the {self.serializer.type} "
                f"serializer: {type(exc).__name__}: {exc}"
            ) from exc
        header = {
            "serializer": self.serializer.type,
            "expiration": expiration.isoformat() if expiration else None,
            "owner": owner,
        }
        name = safe_name(key)
        self.storage.write(name, json.dumps(header).encode() + b"\n" + payload)
        return ResultRecord(key, value, expiration, self.storage.location(name))

    def read(self, key: str, now: datetime | None = None) -> ResultRecord | None:
        """The record under ``key``, or None when missing, expired or unreadable."""
        name = safe_name(key)
        raw = self.storage.read(name)
        if raw is None:
            return None
        head, _, payload = raw.partition(b"\n")
        try:
            header = json.loads(head)
            expiration = header["expiration"] and datetime.fromisoformat(header["expiration"])
            record = ResultRecord(key, None, expiration or None, self.storage.location(name))
            if record.expired(now or datetime.now(UTC)):
                return None
            value = get_serializer(header["serializer"]).loads(payload)
        except Exception:
            return None
        return ResultRecord(key, value, record.expiration, record.location)


# -- references: where a persisted result is, for another process --------------------------


class MissingResult(FlowyardError):
    """Raised when a persisted result cannot be read back (never persisted, gone or expired)."""


LOCAL_STORAGE_TYPE = "local-file-system"


def describe_storage(storage: ResultStorage) -> dict[str, Any]:
    """How to rebuild ``storage`` elsewhere: a block type slug and its fields (no secrets)."""
    if isinstance(storage, LocalFileSystem):
        return {"type": LOCAL_STORAGE_TYPE, "basepath": str(storage.basepath)}
    slug = getattr(storage, "block_type_slug", None)
    if slug:
        from flowyard.blocks.core import secret_fields

        data: dict[str, Any] = storage.model_dump(mode="json")  # type: ignore[attr-defined]
        for name in secret_fields(type(storage)):  # type: ignore[arg-type]
            data.pop(name, None)
        return {"type": slug, **data}
    return {"type": type(storage).__name__, "repr": repr(storage)}


def rebuild_storage(description: dict[str, Any]) -> ResultStorage:
    """The storage ``describe_storage`` described."""
    fields = dict(description)
    kind = fields.pop("type", None)
    if kind == LOCAL_STORAGE_TYPE:
        return LocalFileSystem(fields["basepath"])
    from flowyard.blocks.registry import block_types

    block_type = block_types().get(str(kind))
    if block_type is None or not hasattr(block_type, "read"):
        raise MissingResult(f"results in storage of type {kind!r} cannot be read here")
    storage: ResultStorage = block_type.model_validate(fields)  # type: ignore[assignment]
    return storage


def reference(store: ResultStore, record: ResultRecord) -> dict[str, Any]:
    """A ``schemas.ResultRef`` (as JSON) of ``record``, written or read through ``store``."""
    return {
        "storage": describe_storage(store.storage),
        "key": record.key,
        "location": record.location or store.storage.location(safe_name(record.key)),
        "serializer": store.serializer.type,
    }


def load_result(ref: Any) -> Any:
    """The value a persisted result reference points at, read from its storage.

    ``ref`` is a ``ResultRef`` (or its JSON), or a flow run or task run read from the API
    (``client.read_flow_run(id)``): its ``result``. Raises ``MissingResult`` when there is
    none or it cannot be read.
    """
    ref = getattr(ref, "result", ref) if not callable(getattr(ref, "result", None)) else ref
    if ref is None:
        raise MissingResult("this run has no persisted result (persist_result was not set)")
    data = ref if isinstance(ref, dict) else ref.model_dump()
    store = ResultStore(rebuild_storage(data["storage"]), get_serializer(data["serializer"]))
    record = store.read(data["key"])
    if record is None:
        raise MissingResult(f"no readable result at {data.get('location')!r} (gone or expired)")
    return record.value
