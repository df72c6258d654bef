"""The emulated API server's objects: a versioned store with a watchable event history.

Every change bumps one global ``resourceVersion`` and appends an event to a bounded
history, which watches replay from the version they ask for. ``compact()`` forgets the
history, as etcd compaction does: a watch resuming from an older version is then told
410 Gone.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name


class Gone(Exception):
    """A watch asked for a resourceVersion older than the history kept."""


class AlreadyExists(Exception):
    """An object of that kind, namespace and name exists."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def matches(obj: Obj, labels: dict[str, str], fields: dict[str, str]) -> bool:
    metadata = obj.get("metadata", {})
    have = metadata.get("labels") or {}
    if any(have.get(key) != value for key, value in labels.items()):
        return False
    known = {"metadata.name": metadata.get("name"), "metadata.namespace": metadata.get("namespace")}
    about = obj.get("involvedObject") or {}  # an Event's subject
    known.update({f"involvedObject.{k}": v for k, v in about.items() if isinstance(v, str)})
    return all(known.get(key) == value for key, value in fields.items())


def parse_selector(text: str | None) -> dict[str, str]:
    """``a=b,c==d`` → {a: b, c: d} (equality selectors only, which is all the worker sends)."""
    selector = {}
    for part in filter(None, (text or "").split(",")):
        key, _, value = part.replace("==", "=").partition("=")
        selector[key.strip()] = value.strip()
    return selector


class Store:
    def __init__(self, history: int = 10_000) -> None:
        self.changed = threading.Condition()
        self.version = 0
        self.compacted = 0
        self._objects: dict[Key, Obj] = {}
        self._events: deque[tuple[int, str, str, Obj]] = deque(maxlen=history)

    # -- writes -------------------------------------------------------------------------------

    def create(self, kind: str, obj: Obj) -> Obj:
        with self.changed:
            metadata = obj.setdefault("metadata", {})
            key = (kind, metadata.get("namespace", "default"), metadata["name"])
            if key in self._objects:
                raise AlreadyExists(key)
            metadata.setdefault("namespace", "default")
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now_rfc3339()
            return self._put(kind, key, obj, "ADDED")

    def update(
        self, kind: str, namespace: str, name: str, mutate: Callable[[Obj], None]
    ) -> Obj | None:
        with self.changed:
            current = self._objects.get((kind, namespace, name))
            if current is None:
                return None
            updated = copy.deepcopy(current)
            mutate(updated)
            return self._put(kind, (kind, namespace, name), updated, "MODIFIED")

    def delete(self, kind: str, namespace: str, name: str) -> Obj | None:
        with self.changed:
            obj = self._objects.pop((kind, namespace, name), None)
            if obj is None:
                return None
            self.version += 1
            obj = copy.deepcopy(obj)
            obj["metadata"]["resourceVersion"] = str(self.version)
            self._append(kind, "DELETED", obj)
            return obj

    def compact(self) -> None:
        with self.changed:
            self.compacted = self.version
            self._events.clear()

    def _put(self, kind: str, key: Key, obj: Obj, event: str) -> Obj:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        self._objects[key] = obj
        self._append(kind, event, copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def _append(self, kind: str, event: str, obj: Obj) -> None:
        if len(self._events) == self._events.maxlen:  # the oldest event is forgotten
            self.compacted = self._events[0][0]
        self._events.append((self.version, kind, event, obj))
        self.changed.notify_all()

    # -- reads --------------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        with self.changed:
            obj = self._objects.get((kind, namespace, name))
            return copy.deepcopy(obj) if obj else None

    def list(
        self, kind: str, namespace: str | None, labels: dict[str, str], fields: dict[str, str]
    ) -> tuple[list[Obj], int]:
        with self.changed:
            items = [
                copy.deepcopy(obj)
                for (k, ns, _), obj in self._objects.items()
                if k == kind and namespace in (None, ns) and matches(obj, labels, fields)
            ]
            return items, self.version

    def events_after(
        self,
        version: int,
        kind: str,
        namespace: str | None,
        labels: dict[str, str],
        fields: dict[str, str],
    ) -> tuple[list[tuple[str, Obj]], int]:
        """Events of matching objects after ``version``, and the version they reach."""
        with self.changed:
            if version < self.compacted:
                raise Gone(version)
            found = [
                (event, copy.deepcopy(obj))
                for rv, k, event, obj in self._events
                if rv > version
                and k == kind
                and namespace in (None, obj["metadata"].get("namespace"))
                and matches(obj, labels, fields)
            ]
            return found, self.version

    def wait(self, version: int, timeout: float) -> None:
        """Block until the store is past ``version`` or ``timeout`` passes."""
        with self.changed:
            self.changed.wait_for(lambda: self.version > version, timeout)
