"""``flowyard.futures``: futures of submitted task runs (as ``prefect.futures``)."""

from flowyard.sdk.futures import (
    DoneAndNotDoneFutures,
    TaskFuture,
    TaskFutureList,
    as_completed,
    wait,
)

PrefectFuture = TaskFuture
PrefectFutureList = TaskFutureList

__all__ = [
    "DoneAndNotDoneFutures",
    "PrefectFuture",
    "PrefectFutureList",
    "TaskFuture",
    "TaskFutureList",
    "as_completed",
    "wait",
]
