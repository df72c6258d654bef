"""List-then-watch that survives the API server: what a watched run's verdict rests on.

``follow`` keeps a small cache of the watched objects (by name), filled by a list and kept
current by a watch from the list's ``resourceVersion``, and after every change asks a
pure ``decide(cache)`` whether the wait is over. Nothing that happens to the connection
is taken for a verdict:

- a watch that ends (its ``timeoutSeconds``, a load balancer, a closed stream) is resumed
  from the last resourceVersion seen;
- a 410 Gone (as an HTTP answer or as an ``ERROR`` event) means that resourceVersion is
  too old: the cache is rebuilt from a fresh list, and the watch resumes from there;
- an API server that cannot be reached (restarting, overloaded: ``is_transient``) is
  retried with a capped backoff, for as long as it takes.

Only objects the API server itself reports (in a list or an event) change the cache.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import structlog

from flowyard.errors import KubernetesError
from flowyard.workers.kubernetes.cluster import is_gone, is_transient, read_json, stream_lines

log = structlog.get_logger()

T = TypeVar("T")
Cache = dict[str, dict[str, Any]]
WATCH_SECONDS = 60
"""Server-side length of one watch request; a quiet watch is renewed this often."""
MAX_BACKOFF = 5.0


def follow(
    list_call: Callable[..., Any],
    namespace: str,
    decide: Callable[[Cache], T | None],
    *,
    selector: dict[str, str],
    deadline: float | None = None,
    what: str = "objects",
) -> T | None:
    """Watch until ``decide`` returns a verdict; None once the monotonic ``deadline`` passes."""
    cache: Cache = {}
    version: str | None = None
    backoff = 0.2
    while deadline is None or time.monotonic() < deadline:
        try:
            if version is None:
                listing = read_json(list_call, f"list {what}", namespace, **selector)
                cache = {_name(item): item for item in listing.get("items") or []}
                version = listing.get("metadata", {}).get("resourceVersion")
                verdict = decide(cache)
                if verdict is not None:
                    return verdict
            seconds = _watch_seconds(deadline)
            verdict, version = _watch(
                list_call, namespace, selector, version, seconds, cache, decide
            )
            if verdict is not None:
                return verdict
            backoff = 0.2
        except KubernetesError as exc:
            if is_gone(exc):
                log.info("watch_expired", what=what)
                version = None
                continue
            if not is_transient(exc):
                raise
            log.warning("watch_interrupted", what=what, error=str(exc), retry_in=backoff)
            threading.Event().wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
    return None


def _watch(
    list_call: Callable[..., Any],
    namespace: str,
    selector: dict[str, str],
    version: str | None,
    seconds: int,
    cache: Cache,
    decide: Callable[[Cache], T | None],
) -> tuple[T | None, str | None]:
    """One watch request: (verdict, the resourceVersion to resume from; None: list again)."""
    lines = stream_lines(
        list_call,
        "watch",
        namespace,
        watch=True,
        resource_version=version,
        timeout_seconds=seconds,
        allow_watch_bookmarks=True,
        _request_timeout=(10, seconds + 30),
        **selector,
    )
    for line in lines:
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as exc:  # a line cut short by a broken connection: resume
            raise KubernetesError(f"watch: a broken event ({exc})", 0) from exc
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise KubernetesError("watch: resourceVersion too old", 410)
            raise KubernetesError(f"watch: {obj.get('message', obj)}", int(obj.get("code") or 0))
        version = obj.get("metadata", {}).get("resourceVersion") or version
        if kind == "DELETED":
            cache.pop(_name(obj), None)
        elif kind in ("ADDED", "MODIFIED"):
            cache[_name(obj)] = obj
        else:  # BOOKMARK: only the resourceVersion moves on
            continue
        verdict = decide(cache)
        if verdict is not None:
            lines.close()
            return verdict, version
    return None, version


def _watch_seconds(deadline: float | None) -> int:
    if deadline is None:
        return WATCH_SECONDS
    return max(1, min(WATCH_SECONDS, round(deadline - time.monotonic())))


def _name(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("name", ""))
