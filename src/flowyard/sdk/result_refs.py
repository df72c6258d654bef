"""References to persisted results, and reading them back in another process.

A reference (``schemas.ResultRef``) says which storage and key a result is at, but it
travels through the API, where a worker key or a run token may write it: so a reader
never builds a storage from it. The storage comes from what the reader trusts: one it
is given, one that a task or flow of this process declared (its ``result_storage``), its
own default folder, or a block saved on the server, loaded by name. Only the key is
taken from the reference.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from flowyard.errors import MissingResult, UntrustedResult
from flowyard.sdk.results import (
    LOCAL_STORAGE_TYPE,
    JSONSerializer,
    LocalFileSystem,
    ResultRecord,
    ResultStorage,
    ResultStore,
    default_storage,
    get_serializer,
    get_storage,
    names_saved_block,
    safe_name,
    saved_block_name,
)

StorageOption = str | Path | ResultStorage | ResultStore | None
MAX_DECLARED = 256
MAX_RESULT_JSON = 4096  # the API's bound (schemas.task_runs), not imported: it loads pydantic

_declared: dict[str, ResultStorage] = {}
_declared_lock = threading.Lock()


def describe_storage(storage: ResultStorage) -> dict[str, Any]:
    """What a reader needs to find ``storage`` among those it trusts: its block type, its
    saved block name (``block``) if it has one, and its fields (no secrets)."""
    block = saved_block_name(storage)
    named = {"block": block} if block else {}
    if isinstance(storage, LocalFileSystem):
        return {"type": LOCAL_STORAGE_TYPE, "basepath": str(storage.basepath), **named}
    slug = getattr(storage, "block_type_slug", None)
    if slug:
        from flowyard.blocks.core import secret_fields

        data: dict[str, Any] = storage.model_dump(mode="json")  # type: ignore[attr-defined]
        for name in secret_fields(type(storage)):  # type: ignore[arg-type]
            data.pop(name, None)
        return {"type": slug, **data, **named}
    return {"type": type(storage).__name__, "repr": repr(storage)}


def declared(storage: ResultStorage) -> ResultStorage:
    """Remember ``storage`` as declared by code of this process (a task's or flow's
    ``result_storage``), so that references to it are read from it; returns it."""
    with _declared_lock:
        if len(_declared) >= MAX_DECLARED:
            del _declared[next(iter(_declared))]
        _declared[_identity(describe_storage(storage))] = storage
    return storage


def _identity(description: dict[str, Any]) -> str:
    return json.dumps(description, sort_keys=True, default=str)


def trusted_storage(description: dict[str, Any]) -> ResultStorage:
    """The storage a reference describes, if this process trusts it: a saved block it
    names (loaded from the server), one declared here, or this process's default folder.
    ``UntrustedResult`` otherwise; nothing is built from the description's own fields."""
    block = description.get("block")
    if isinstance(block, str) and names_saved_block(block):
        return get_storage(block)
    with _declared_lock:
        known = _declared.get(_identity(description))
    if known is not None:
        return known
    default = default_storage()
    basepath = description.get("basepath")
    same = isinstance(basepath, str) and _same_folder(Path(basepath), default.basepath)
    if description.get("type") == LOCAL_STORAGE_TYPE and same and not block:
        return default
    raise UntrustedResult(
        f"refusing to read a result from storage {_shown(description)}: it is neither this "
        "process's default storage, nor one its tasks or flows declared, nor a saved "
        "block; pass the storage it was written to (the task's or flow's result_storage) "
        "as storage=, or save it as a block"
    )


def _same_folder(a: Path, b: Path) -> bool:
    return a.expanduser().resolve(strict=False) == b.expanduser().resolve(strict=False)


def _shown(description: dict[str, Any]) -> str:
    kind = description.get("type")
    where = description.get("basepath") or description.get("bucket_name") or description
    return f"{kind!r} at {where!r}"


def reference(store: ResultStore, record: ResultRecord) -> dict[str, Any]:
    """A ``schemas.ResultRef`` (as JSON) of ``record``, written or read through ``store``;
    a small JSON result travels with it (``value_json``), for people to see in the UI."""
    ref = {
        "storage": describe_storage(store.storage),
        "key": record.key,
        "location": record.location or store.storage.location(safe_name(record.key)),
        "serializer": record.serializer or store.serializer.type,
    }
    shown = _json_value(record) if ref["serializer"] == JSONSerializer.type else None
    return {**ref, "value_json": shown} if shown is not None else ref


def _json_value(record: ResultRecord) -> str | None:
    """The record's value as JSON text (as its JSON serializer wrote it) when it is small
    and plain (no NaN or infinity: the API's documents carry none)."""
    try:
        text = json.dumps(record.value, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if len(text) <= MAX_RESULT_JSON else None


def load_result(ref: Any, storage: StorageOption = None) -> Any:
    """The value a persisted result reference points at.

    ``ref`` is a ``ResultRef`` (or its JSON), or a flow run or task run read from the API
    (``client.read_flow_run(id)``): its ``result``. ``storage`` is where to read it (a
    ``ResultStore``, or anything ``result_storage`` takes); without it, the reference
    must name this process's default storage or a saved block. Raises ``MissingResult``
    when there is none or it cannot be read, ``UntrustedResult`` when its storage is not
    trusted or a pickled record is not validly signed.
    """
    ref = getattr(ref, "result", ref) if not callable(getattr(ref, "result", None)) else ref
    if ref is None:
        raise MissingResult("this run has no persisted result (persist_result was not set)")
    data = ref if isinstance(ref, dict) else ref.model_dump()
    if isinstance(storage, ResultStore):
        store = storage
    else:
        chosen = trusted_storage(data["storage"]) if storage is None else get_storage(storage)
        store = ResultStore(chosen, get_serializer(None))
    return store.load(data["key"]).value
