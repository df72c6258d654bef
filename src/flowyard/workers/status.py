"""A worker's own HTTP endpoint (``--metrics-port``): ``/health`` for probes, ``/metrics``.

``/health`` answers 200 while the worker's heartbeats reach the API (or it is starting)
and 503 once three heartbeats in a row failed (of any pool the process serves), so that
Kubernetes restarts a worker that lost the API for good. It listens on all interfaces, as
a probe from the kubelet needs, and serves nothing but these two read-only documents.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)

from flowyard.utilities.status_http import Answer, ReadOnlyHttpServer


class WorkerMetrics:
    """Counters the workers of one process keep about themselves: a series per pool (a
    process may serve several pools, one worker each)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._launched = self._counter("flowyard_worker_runs_launched", "Runs launched")
        self._crashed = self._counter(
            "flowyard_worker_runs_crashed", "Runs this worker reported Crashed"
        )
        self._claim_errors = self._counter("flowyard_worker_claim_errors", "Claims that failed")
        self._heartbeat_errors = self._counter(
            "flowyard_worker_heartbeat_errors", "Heartbeats that failed"
        )
        self._active = Gauge(
            "flowyard_worker_active_runs", "Runs being watched", ["pool"], registry=self.registry
        )
        self._pools: list[PoolMetrics] = []

    def _counter(self, name: str, documentation: str) -> Counter:
        return Counter(name, documentation, ["pool"], registry=self.registry)

    def of_pool(self, pool: str, active_runs: Callable[[], int]) -> PoolMetrics:
        """The series of one pool's worker."""
        self._active.labels(pool=pool).set_function(active_runs)
        metrics = PoolMetrics(
            launched=self._launched.labels(pool=pool),
            crashed=self._crashed.labels(pool=pool),
            claim_errors=self._claim_errors.labels(pool=pool),
            heartbeat_errors=self._heartbeat_errors.labels(pool=pool),
        )
        self._pools.append(metrics)
        return metrics

    def healthy(self, heartbeat_seconds: float) -> bool:
        """True while every pool's worker reaches the API."""
        return all(pool.healthy(heartbeat_seconds) for pool in self._pools)


@dataclass
class PoolMetrics:
    """One pool's worker's counters, and when its heartbeat last reached the API."""

    launched: Counter
    crashed: Counter
    claim_errors: Counter
    heartbeat_errors: Counter
    last_heartbeat_ok: float = field(default_factory=time.monotonic)

    def healthy(self, heartbeat_seconds: float) -> bool:
        return time.monotonic() - self.last_heartbeat_ok <= 3 * heartbeat_seconds + 5


class StatusServer(ReadOnlyHttpServer):
    """Serves ``/health`` and ``/metrics`` from a daemon thread, on every interface."""

    def __init__(
        self, port: int, metrics: WorkerMetrics, heartbeat_seconds: float, name: str
    ) -> None:
        def health() -> Answer:
            ok = metrics.healthy(heartbeat_seconds)
            body = json.dumps({"status": "ok" if ok else "api unreachable", "worker": name})
            return 200 if ok else 503, body.encode(), "application/json"

        def prometheus() -> Answer:
            return 200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST

        routes = {"/health": health, "/metrics": prometheus}
        super().__init__("0.0.0.0", port, routes, name="status")
