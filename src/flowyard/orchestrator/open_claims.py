"""The claim long-polls open on this API process, by pool and worker.

A worker that stops leaves its long-poll behind on the server; left alone, that claim would
take the pool's next run for a worker that is gone, and the run would wait for its lease to
expire. The worker's goodbye ends its own open claims (they answer with no runs), and a
claim whose client has disconnected takes nothing (see api/workers.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class OpenClaim:
    """One claim request in flight; ``ended`` once its worker said goodbye."""

    pool: str
    worker: str
    ended: bool = False


@dataclass
class OpenClaims:
    """Every claim in flight on this process (each entry lives as long as its request)."""

    _open: dict[tuple[str, str], list[OpenClaim]] = field(default_factory=dict)

    @contextmanager
    def opened(self, pool: str, worker: str) -> Iterator[OpenClaim]:
        claim = OpenClaim(pool, worker)
        self._open.setdefault((pool, worker), []).append(claim)
        try:
            yield claim
        finally:
            held = self._open[pool, worker]
            held.remove(claim)
            if not held:
                del self._open[pool, worker]

    def end(self, pool: str, worker: str) -> int:
        """Mark the worker's open claims ended; how many there were (wake them to answer)."""
        held = self._open.get((pool, worker), [])
        for claim in held:
            claim.ended = True
        return len(held)

    def count(self, pool: str) -> int:
        """Claims of the pool waiting on this process."""
        return sum(len(held) for (name, _), held in self._open.items() if name == pool)
