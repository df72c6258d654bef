"""What every task run of one task in one flow run shares when it runs on a distributed
engine — the task, the API access, the flow's result storage — pickled once in the flow's
process however many runs carry it, and unpickled once per worker process.

Without it each of 10,000 mapped runs would pickle the task again (by value when it is
defined in ``__main__``: its function, its hooks, their classes) and each worker would
unpickle it again: most of a short task's cost on the engine.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowyard.sdk.remote_runs import LargeResults, RunAccess
    from flowyard.sdk.tasks import Task

KEPT_PARCELS = 64  # per worker process: the tasks of the few flow runs it serves at a time


class Parcel:
    """A task with its run's access and result storage; pickles to its bytes, made once."""

    def __init__(
        self, task: Task[..., Any], access: RunAccess, large_results: LargeResults | None
    ) -> None:
        self.task, self.access, self.large_results = task, access, large_results
        self._packed: tuple[str, bytes] | None = None

    def __reduce__(self) -> tuple[Any, tuple[str, bytes]]:
        if self._packed is None:  # two threads may both pack it: the same bytes
            import cloudpickle  # Dask's and Ray's own pickler, and a dependency of ours

            blob = cloudpickle.dumps((self.task, self.access, self.large_results))
            self._packed = (hashlib.sha256(blob).hexdigest(), blob)
        return (_unpack, self._packed)


_unpacked: OrderedDict[str, Parcel] = OrderedDict()
_unpacked_lock = threading.Lock()


def _unpack(digest: str, blob: bytes) -> Parcel:
    """The parcel of these bytes, unpickled the first time this process sees them."""
    with _unpacked_lock:
        parcel = _unpacked.get(digest)
        if parcel is not None:
            _unpacked.move_to_end(digest)
            return parcel
    import cloudpickle

    parcel = Parcel(*cloudpickle.loads(blob))
    parcel._packed = (digest, blob)
    with _unpacked_lock:
        _unpacked[digest] = parcel
        while len(_unpacked) > KEPT_PARCELS:
            _unpacked.popitem(last=False)
    return parcel


class Parcels:
    """One flow run's parcels, one per task (made again when the run's token changes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[int, Parcel] = {}

    def of(
        self, task: Task[..., Any], access: RunAccess, large_results: LargeResults | None
    ) -> Parcel:
        with self._lock:
            parcel = self._made.get(id(task))
            # the rest of the access is the flow run's (its parameters: not compared each time)
            if parcel is None or parcel.task is not task or parcel.access.token != access.token:
                parcel = self._made[id(task)] = Parcel(task, access, large_results)
            return parcel
