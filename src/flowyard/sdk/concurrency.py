"""Holding slots of tag concurrency limits while a task run runs.

Before a tagged task runs, the engine takes one slot of each of its tags that has a limit
(``flowyard concurrency-limit create TAG N``), all or none, waiting while one is full;
it renews the lease while the task runs and gives the slots back when it ends. Without
an API (a script run without ``FLOWYARD_API_URL``) tags limit nothing, as in Prefect.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
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
    on_wait: object = None,
) -> Iterator[None]:
    """Hold a slot of each limited tag for the body; wait for them first."""
    if client is None or not tags:
        yield
        return
    from flowyard.schemas import SlotsRequest  # pydantic: only when an API is in use

    request = SlotsRequest(tags=sorted(tags), holder=holder or uuid.uuid4().hex)
    limited = _acquire(client, request, on_wait)
    if not limited:
        yield
        return
    held = request.model_copy(update={"tags": limited})
    stop = threading.Event()
    renewer = threading.Thread(
        target=_renew, args=(client, held, stop), name="flowyard-tag-slots", daemon=True
    )
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        with contextlib.suppress(Exception):  # the lease ends by itself if this fails
            client.task_slots("release", held)


def _acquire(client: FlowyardClient, request: SlotsRequest, on_wait: object) -> list[str]:
    """The limited tags, once a slot of each is held (waiting, polling, while one is full)."""
    delay = 0.05
    warned = False
    while True:
        answer = client.task_slots("acquire", request)
        if answer.acquired:
            return answer.limited_tags
        if not warned and callable(on_wait):
            on_wait(answer.full_tag)
            warned = True
        time.sleep(delay)
        delay = min(delay * 2, MAX_POLL_SECONDS)


def _renew(client: FlowyardClient, held: SlotsRequest, stop: threading.Event) -> None:
    while not stop.wait(held.lease_seconds / 3):
        with contextlib.suppress(Exception):  # a missed renewal is retried on the next beat
            client.task_slots("renew", held)
