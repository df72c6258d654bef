"""Retry delays for tasks and flows, as pure functions (Prefect's semantics).

``retry_delay_seconds`` is a number (every retry waits that long), a list (retry *n*
waits item *n*; the last item repeats), or a callable of the retry count returning such a
list — what ``exponential_backoff(backoff_factor)`` builds. ``retry_jitter_factor`` ``j``
spreads each delay ``d`` uniformly over ``[max(0, d·(1−j)), d·(1+j)]``: the upper bound is
Prefect's, and the average stays ``d``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

RetryDelay = float | Sequence[float] | Callable[[int], Sequence[float]]

MAX_DELAYS = 50


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Delays ``factor``, ``2·factor``, ``4·factor``, … for as many retries as configured."""
    if backoff_factor < 0:
        raise ValueError("backoff_factor must be >= 0")

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**n for n in range(retries)]

    return delays


def delay_list(retry_delay_seconds: RetryDelay | None, retries: int) -> list[float]:
    """The configured delays as a list (empty means no wait)."""
    value = retry_delay_seconds
    if value is None:
        return []
    if callable(value):
        value = value(retries)
    if isinstance(value, int | float):
        return [float(value)]
    delays = [float(v) for v in value]
    if len(delays) > MAX_DELAYS:
        raise ValueError(f"retry_delay_seconds accepts at most {MAX_DELAYS} delays")
    if any(d < 0 for d in delays):
        raise ValueError("retry delays must be >= 0")
    return delays


def retry_delay(
    delays: Sequence[float],
    retry_number: int,
    jitter_factor: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``retry_number`` (1-based), with jitter if configured."""
    if not delays:
        return 0.0
    base = delays[min(retry_number, len(delays)) - 1]
    if not jitter_factor:
        return base
    low = max(0.0, base * (1 - jitter_factor))
    high = base * (1 + jitter_factor)
    return low + (high - low) * rand()


def check_retry_options(retries: int | None, jitter_factor: float | None) -> None:
    if retries is not None and retries < 0:
        raise ValueError("retries must be >= 0")
    if jitter_factor is not None and jitter_factor < 0:
        raise ValueError("retry_jitter_factor must be >= 0")
