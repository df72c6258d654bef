"""``flowyard.futures``: futures of submitted task runs (as ``prefect.futures``)."""

from flowyard.sdk.distributed_futures import PrefectDistributedFuture
from flowyard.sdk.futures import (
    DoneAndNotDoneFutures,
    PrefectFutureList,
    TaskFuture,
    TaskFutureList,
    as_completed,
    wait,
)

PrefectFuture = TaskFuture

__all__ = [
    "DoneAndNotDoneFutures",
    "PrefectDistributedFuture",
    "PrefectFuture",
    "PrefectFutureList",
    "TaskFuture",
    "TaskFutureList",
    "as_completed",
    "wait",
]
