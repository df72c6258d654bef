"""Schemathesis hooks for the API fuzz run (loaded through ``SCHEMATHESIS_HOOKS``)."""

from __future__ import annotations

from typing import Any

import schemathesis

LONG_POLL_CAP = 0.2  # seconds: a claim may long-poll a minute; the fuzzer need not wait it out


def _shorten(values: Any, name: str) -> Any:
    if isinstance(values, dict):
        wait = values.get(name)
        if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > LONG_POLL_CAP:
            values[name] = LONG_POLL_CAP
    return values


@schemathesis.hook
def map_body(ctx: Any, body: Any) -> Any:
    """Shorten claims' long polls, so that the run's time goes into more cases."""
    return _shorten(body, "wait")


@schemathesis.hook
def map_query(ctx: Any, query: Any) -> Any:
    """Shorten waits for a background run to finish, and event follows' long polls."""
    return _shorten(_shorten(query, "timeout"), "wait")
