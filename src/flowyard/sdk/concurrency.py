"""Holding slots of concurrency limits: a tagged task run's, or a ``concurrency()`` block's.

Before a tagged task runs, the engine takes one slot of each of its tags that has a limit
(``flowyard concurrency-limit create TAG N``), all or none, waiting while one is full;
it renews the lease while the task runs and gives the slots back when it ends. Without
an API (a script run without ``FLOWYARD_API_URL``) tags limit nothing, as in Prefect.
``flowyard.concurrency`` takes slots of the same limits by name, for any block of code,
and ``rate_limit`` takes slots that are not given back but decay.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient
    from flowyard.schemas import SlotsRequest

LEASE_SECONDS = 60.0
MAX_POLL_SECONDS = 2.0


@contextlib.contextmanager
def tag_slots(
    client: FlowyardClient | None,
    tags: frozenset[str],
    holder: str | None,
    *,
    on_wait: Callable[[str | None], object] | None = None,
) -> Iterator[None]:
    """Hold a slot of each limited tag for the body; wait for them first. The tags are
    those the task run is recorded with (``storable_tags``: a tag the API would refuse is
    trimmed or cleaned, never a failure of the task)."""
    if client is None or not tags:
        yield
        return
    from flowyard.schemas import storable_tags  # only with an API

    with held_slots(client, storable_tags(tags), holder, on_wait=on_wait):
        yield


@contextlib.contextmanager
def held_slots(
    client: FlowyardClient,
    names: Iterable[str],
    holder: str | None = None,
    *,
    occupy: int = 1,
    lease_seconds: float = LEASE_SECONDS,
    timeout: float | None = None,
    on_wait: Callable[[str | None], object] | None = None,
) -> Iterator[list[str]]:
    """Hold ``occupy`` slots of each named limit for the body (renewed meanwhile); the
    names that have a limit. ``TimeoutError`` when they are not all free in ``timeout``.

    A lease longer than the server allows (``MAX_SLOT_LEASE_SECONDS``) is shortened to it:
    the lease only bounds how long a dead holder keeps its slots, since it is renewed.
    """
    from flowyard.schemas import MAX_SLOT_LEASE_SECONDS, SlotsRequest  # only with an API

    request = SlotsRequest(
        tags=sorted(set(names)), holder=holder or uuid.uuid4().hex,
        lease_seconds=min(lease_seconds, MAX_SLOT_LEASE_SECONDS), occupy=occupy,
    )  # fmt: skip
    limited = _acquire(client, request, on_wait, timeout)
    if not limited:
        yield []
        return
    held = request.model_copy(update={"tags": limited})
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(client, held, stop), name="flowyard-slots", daemon=True
    )
    renewer.start()
    try:
        yield limited
    finally:
        stop.set()
        renewer.join(timeout=5)
        with contextlib.suppress(Exception):  # the lease ends by itself if this fails
            client.task_slots("release", held)


def take_decaying_slots(
    client: FlowyardClient, names: Iterable[str], *, occupy: int = 1, timeout: float | None = None
) -> list[str]:
    """Take ``occupy`` slots of each named rate limit, waiting until they decay enough to
    make room; the names that have a limit. Nothing is held: the slots free themselves."""
    from flowyard.schemas import SlotsRequest

    request = SlotsRequest(
        tags=sorted(set(names)), holder=uuid.uuid4().hex, occupy=occupy, mode="rate_limit"
    )
    return _acquire(client, request, None, timeout)


def _acquire(
    client: FlowyardClient,
    request: SlotsRequest,
    on_wait: Callable[[str | None], object] | None,
    timeout: float | None,
) -> list[str]:
    """The limited names, once the slots of each are taken (waiting while one is full:
    until its decaying slots make room, or polling with backoff for held ones)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.05
    warned = False
    while True:
        answer = client.task_slots("acquire", request)
        if answer.acquired:
            return answer.limited_tags
        if not warned and on_wait is not None:
            on_wait(answer.full_tag)
            warned = True
        wait = delay if answer.retry_after is None else answer.retry_after
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"no free slot of concurrency limit {answer.full_tag!r} within {timeout} s"
                )
            wait = min(wait, left)
        time.sleep(wait)
        if answer.retry_after is None:
            delay = min(delay * 2, MAX_POLL_SECONDS)


def _renew(client: FlowyardClient, held: SlotsRequest, stop: threading.Event) -> None:
    while not stop.wait(held.lease_seconds / 3):
        with contextlib.suppress(Exception):  # a missed renewal is retried on the next beat
            client.task_slots("renew", held)
