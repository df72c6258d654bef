"""Several work pools served by one worker process: one worker per pool.

``flowyard worker start --pool a --pool b`` makes a worker of the chosen type for each
pool, as Celery and Airflow workers serve several queues. Each claims, heartbeats and is
listed under its own pool (named ``<name>-<pool>``), so pool status, a key's pool scope and
cancellation work as with one pool per process; ``--limit`` is per pool. The process shares
its signals (``stop`` / ``stop_now`` reach every pool) and one ``/health`` + ``/metrics``
endpoint, whose series carry a ``pool`` label. Every pool is checked before any is
created or served, so a pool the key may not serve stops the start with nothing done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from flowyard.errors import InvalidInput
from flowyard.schemas.base import MAX_LABEL_LENGTH
from flowyard.workers.base import SIGNAL_CHECK_SECONDS, BaseWorker, default_name
from flowyard.workers.status import StatusServer, WorkerMetrics

log = structlog.get_logger()

MAX_POOLS = 50
"""Pools one worker process may serve (each has its own claim and heartbeat threads)."""

AnyWorker = BaseWorker[Any, Any]


def worker_names(name: str | None, worker_type: str, pools: Sequence[str]) -> list[str]:
    """One name per pool: ``name`` itself for a single pool, else ``<name>-<pool>``."""
    base = name or default_name(worker_type)
    names = [base] if len(pools) == 1 else [f"{base}-{pool}" for pool in pools]
    for found in names:
        if len(found) > MAX_LABEL_LENGTH:
            raise InvalidInput(f"worker name {found[:40]!r}… is over {MAX_LABEL_LENGTH} characters")
    return names


class WorkerGroup:
    """The workers of one process, one per pool, started and stopped together."""

    def __init__(
        self,
        make: Callable[[str, str, WorkerMetrics], AnyWorker],
        pools: Sequence[str],
        *,
        name: str | None,
        worker_type: str,
        metrics_port: int | None = None,
    ) -> None:
        """``make(pool, name, metrics)`` builds one pool's worker."""
        if not pools:
            raise InvalidInput("give at least one work pool")
        if len(pools) > MAX_POOLS:
            raise InvalidInput(f"a worker serves at most {MAX_POOLS} pools, not {len(pools)}")
        if len(set(pools)) != len(pools):
            twice = next(pool for pool in pools if list(pools).count(pool) > 1)
            raise InvalidInput(f"work pool {twice!r} is given twice")
        self.metrics = WorkerMetrics()
        self.workers = [
            make(pool, worker_name, self.metrics)
            for pool, worker_name in zip(pools, worker_names(name, worker_type, pools), strict=True)
        ]
        self.metrics_port = metrics_port

    def ensure_pools(self) -> list[str]:
        """Check every pool (its type, this key's right to serve it), then create those
        missing; return the pools created."""
        missing = [worker for worker in self.workers if not worker.pool_exists()]
        for worker in missing:
            worker.create_pool()
        return [worker.pool for worker in missing]

    @property
    def stopping(self) -> bool:
        return any(worker.stopping for worker in self.workers)

    def stop(self) -> None:
        """Stop claiming in every pool; runs going get each worker's grace period."""
        for worker in self.workers:
            worker.stop()

    def stop_now(self) -> None:
        """Kill every pool's runs at once (a second Ctrl-C)."""
        for worker in self.workers:
            worker.stop_now()

    def run(self, *, once: bool = False) -> None:
        """Serve every pool until ``stop`` (with ``once``: one claim each), then drain.
        A pool whose worker fails stops the others; its error is raised."""
        status = None
        if self.metrics_port is not None:
            heartbeat = min(worker.heartbeat_seconds for worker in self.workers)
            names = ", ".join(worker.name for worker in self.workers)
            status = StatusServer(self.metrics_port, self.metrics, heartbeat, names).start()
        errors: list[Exception] = []

        def serve(worker: AnyWorker) -> None:
            try:
                worker.run(once=once)
            except Exception as exc:
                errors.append(exc)
                log.error("worker_failed", pool=worker.pool, error=str(exc))
                self.stop()

        threads = [
            threading.Thread(target=serve, args=(worker,), name=f"pool-{worker.pool}")
            for worker in self.workers
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():  # bounded waits: see BaseWorker.run
                    thread.join(SIGNAL_CHECK_SECONDS)
        finally:
            if status is not None:
                status.stop()
        if errors:
            raise errors[0]
