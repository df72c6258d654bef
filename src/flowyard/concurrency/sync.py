"""``concurrency(names, occupy=1, ...)``: a block that holds slots of named limits;
``rate_limit(names, occupy=1, ...)``: wait for slots that then decay by themselves.

Slots are leased from the API (``lease_duration``, at most 300 s, renewed while the block
runs, so a process that dies frees them) and belong to the flow run (or key) that took
them: no other run can free them; all names at once or none, waiting while one is full. A
name without a limit holds nothing, unless ``strict`` asks for an error. Without an API
(``FLOWYARD_API_URL`` unset) nothing is limited, as with tags.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flowyard.errors import ConcurrencySlotAcquisitionError
from flowyard.sdk.api import direct_run_client
from flowyard.sdk.concurrency import held_slots, take_decaying_slots
from flowyard.sdk.context import get_flow_run_context

if TYPE_CHECKING:
    from flowyard.client import FlowyardClient


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
    wanted = _names(names, occupy)
    client = _client(wanted, strict)
    if client is None:
        yield
        return
    with held_slots(
        client, wanted, occupy=occupy, lease_seconds=lease_duration, timeout=timeout_seconds
    ) as limited:
        _check_strict(wanted, limited, strict)
        yield


def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait until ``occupy`` slots of each limit in ``names`` are free, and take them; they
    are not given back but decay at the limit's ``slot_decay_per_second``. So a limit of
    L with a decay of d lets L callers through at once, then d a second.

    Raises ``TimeoutError`` when the slots are not free within ``timeout_seconds``; every
    limit must have a slot decay (``InvalidInput`` otherwise).
    """
    wanted = _names(names, occupy)
    client = _client(wanted, strict)
    if client is not None:
        limited = take_decaying_slots(client, wanted, occupy=occupy, timeout=timeout_seconds)
        _check_strict(wanted, limited, strict)


def _names(names: str | list[str], occupy: int) -> list[str]:
    if occupy < 1:
        raise ValueError("occupy must be at least 1")
    return [names] if isinstance(names, str) else list(names)


def _client(wanted: list[str], strict: bool) -> FlowyardClient | None:
    """The run's API client, or the script's; None (or an error, if ``strict``) without."""
    run = get_flow_run_context()
    client = run.client if run is not None and run.client is not None else direct_run_client()
    if client is None and strict:
        raise ConcurrencySlotAcquisitionError(
            f"cannot hold {wanted}: no Flowyard API is configured (FLOWYARD_API_URL)"
        )
    return client


def _check_strict(wanted: list[str], limited: list[str], strict: bool) -> None:
    missing = sorted(set(wanted) - set(limited))
    if strict and missing:
        raise ConcurrencySlotAcquisitionError(
            f"no active concurrency limit named {', '.join(map(repr, missing))}: create it with "
            "`flowyard concurrency-limit create NAME LIMIT`"
        )
