"""``concurrency(names, occupy=1, ...)``: a block that holds slots of named limits.

Slots are leased from the API (``lease_duration``, renewed while the block runs, so a
process that dies frees them); all names at once or none, waiting while one is full. A
name without a limit holds nothing, unless ``strict`` asks for an error. Without an API
(``FLOWYARD_API_URL`` unset) nothing is limited, as with tags.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from flowyard.errors import FlowyardError
from flowyard.sdk.api import direct_run_client
from flowyard.sdk.concurrency import held_slots
from flowyard.sdk.context import get_flow_run_context


class ConcurrencySlotAcquisitionError(FlowyardError):
    """Raised by ``strict`` when a name has no concurrency limit (or no API is configured)."""


@contextlib.contextmanager
def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
    holder: object = None,
) -> Iterator[None]:
    """Hold ``occupy`` slots of each limit in ``names`` while the block runs.

    Raises ``TimeoutError`` when the slots are not free within ``timeout_seconds``.
    ``max_retries`` and ``holder`` are accepted for Prefect compatibility; waiting is
    bounded by ``timeout_seconds`` alone.
    """
    wanted = [names] if isinstance(names, str) else list(names)
    if occupy < 1:
        raise ValueError("occupy must be at least 1")
    run = get_flow_run_context()
    client = run.client if run is not None and run.client is not None else direct_run_client()
    if client is None:
        if strict:
            raise ConcurrencySlotAcquisitionError(
                f"cannot hold {wanted}: no Flowyard API is configured (FLOWYARD_API_URL)"
            )
        yield
        return
    with held_slots(
        client, wanted, occupy=occupy, lease_seconds=lease_duration, timeout=timeout_seconds
    ) as limited:
        missing = sorted(set(wanted) - set(limited))
        if strict and missing:
            raise ConcurrencySlotAcquisitionError(
                f"no concurrency limit named {', '.join(map(repr, missing))}: create it with "
                "`flowyard concurrency-limit create NAME LIMIT`"
            )
        yield
