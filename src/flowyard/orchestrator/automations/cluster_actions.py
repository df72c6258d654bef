"""Automation actions on a Redis Cluster: a small queue of our own instead of RQ's.

RQ needs one standalone Redis: its keys (``rq:queue:…``, ``rq:job:…``, its registries)
carry no common hash tag, so its multi-key transactions fail with CROSSSLOT on a
cluster, and its worker reads a standalone client's connection pool. On a cluster the
actions go through two sorted sets that share the tag ``{actions}`` (one slot)::

    fy:{actions}:due    ZSET  action row id -> when it may run (now, or after a retry interval)
    fy:{actions}:taken  ZSET  action row id -> lease expiry, while a replica runs it

``take.lua``'s one script moves expired leases back to ``due`` (their replica died) and
takes the first due id. The row in the store says what happens: ``run_action`` runs it
only while it is ``pending``, and a failed attempt that may pass leaves it ``pending``
(queued again after its retry interval), a final one ``failed``. There is no failed-job
registry: the row's error and its ``…action.failed`` event are the record.
The interface is :class:`~flowyard.orchestrator.automations.action_queue.ActionQueue`'s:
``enqueue``, ``start``, ``stop``, ``requeue_stale``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import redis
import structlog
from redis.cluster import RedisCluster
from sqlalchemy import Row, select, update

from flowyard.errors import QueueUnavailable
from flowyard.orchestrator.automations import actions
from flowyard.pools.topology import parse
from flowyard.store import models as m

if TYPE_CHECKING:
    from flowyard.orchestrator.runtime import Orchestrator

log = structlog.get_logger()
Action = m.AutomationAction

DUE = "fy:{actions}:due"
TAKEN = "fy:{actions}:taken"
POLL_SECONDS = 1.0
"""How long the runner waits on an empty queue before it looks again (an enqueue by this
replica wakes it at once; another replica's is seen within this)."""
LEASE_MARGIN = 60.0
STOP_SECONDS = 5.0
SWEEP_BATCH = 500

_TAKE = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], 'NX', ARGV[1], id)
end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
if #due == 0 then
  return false
end
redis.call('ZREM', KEYS[1], due[1])
redis.call('ZADD', KEYS[2], ARGV[2], due[1])
return due[1]
"""


class ClusterActionQueue:
    """Queues action rows in two hash-tagged sorted sets and runs them in this process."""

    def __init__(self, redis_url: str, orch: Orchestrator) -> None:
        self.orch = orch
        self.redis = RedisCluster.from_url(
            parse(redis_url).url, socket_connect_timeout=5.0, decode_responses=True
        )
        self._take = self.redis.register_script(_TAKE)
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread: threading.Thread | None = None

    def enqueue(self, action_ids: list[str]) -> None:
        """Queue the actions of a committed firing now (blocking; off the event loop)."""
        self._put(action_ids, time.time())
        self._kick.set()

    def start(self) -> None:
        """Start running queued actions in this process (called from the event loop)."""
        actions.install(self.orch, asyncio.get_running_loop())
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, name="automation-actions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop running actions (blocking); a running one is left to finish in its thread."""
        self._stop.set()
        self._kick.set()
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
            self._thread = None
        actions.uninstall()
        with contextlib.suppress(Exception):
            self.redis.close()

    def requeue_stale(self) -> int:
        """Queue again the rows not final that are in neither sorted set (never queued,
        lost with Redis's data, or left running by a replica that died); how many."""
        rows = self._unsettled()
        try:
            lost = [row for row in rows if not self._known(row.id)]
        except redis.RedisError as exc:
            raise QueueUnavailable(f"automation actions cannot be read: {exc}") from exc
        retries = self.orch.settings.automation_action_retries
        for row in lost:
            if row.status == "running" and row.attempts > retries:
                actions.record_lost(self.orch, row.id, "its runner stopped before an outcome")
        again = [row.id for row in lost if row.status == "pending" or row.attempts <= retries]
        with self.orch.db.session() as session:
            session.execute(
                update(Action)
                .where(Action.id.in_(again), Action.status == "running")
                .values(status="pending")
            )
        self._put(again, time.time())
        if again:
            log.info("automation_actions_requeued", lost=len(again))
        return len(again)

    def _unsettled(self) -> Sequence[Row[str, str, int]]:
        grace = timedelta(seconds=self.orch.settings.automation_action_requeue_after_seconds)
        with self.orch.db.read() as session:
            query = (
                select(Action.id, Action.status, Action.attempts)
                .join(m.AutomationFiring, m.AutomationFiring.id == Action.firing_id)
                .where(
                    Action.status.in_(("pending", "running")),
                    m.AutomationFiring.fired < datetime.now(UTC) - grace,
                )
                .limit(SWEEP_BATCH)
            )
            return session.execute(query).all()

    def _known(self, action_id: str) -> bool:
        due, taken = self.redis.zscore(DUE, action_id), self.redis.zscore(TAKEN, action_id)
        return due is not None or taken is not None

    def _put(self, action_ids: list[str], when: float) -> None:
        if not action_ids:
            return
        try:
            self.redis.zadd(DUE, dict.fromkeys(action_ids, when), nx=True)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"automation actions cannot be queued: {exc}") from exc
        with self.orch.db.session() as session:
            session.execute(
                update(Action).where(Action.id.in_(action_ids)).values(enqueued=datetime.now(UTC))
            )

    # -- the runner ----------------------------------------------------------------------

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                action_id = self._next()
            except redis.RedisError as exc:
                log.warning("automation_actions_waiting", error=str(exc))
                action_id = None
            if action_id is None:
                self._kick.wait(POLL_SECONDS)
                self._kick.clear()
                continue
            self._run(action_id)

    def _next(self) -> str | None:
        now = time.time()
        lease = now + self.orch.settings.automation_action_timeout_seconds + LEASE_MARGIN
        taken = self._take(keys=[DUE, TAKEN], args=[now, lease])
        return str(taken) if taken else None

    def _run(self, action_id: str) -> None:
        try:
            actions.run_action(action_id)
        except Exception as exc:  # recorded on the row (secrets scrubbed); a retry if pending
            log.debug(
                "automation_action_attempt_failed", action_id=action_id, kind=type(exc).__name__
            )
        retry_at = self._retry_at(action_id)
        try:
            if retry_at is not None:
                self.redis.zadd(DUE, {action_id: retry_at})
            self.redis.zrem(TAKEN, action_id)
        except redis.RedisError as exc:  # its lease expires; the sweep or take finds it
            log.warning("automation_action_not_settled", action_id=action_id, error=str(exc))

    def _retry_at(self, action_id: str) -> float | None:
        """When a row left pending by a failed attempt runs again; None when it is done."""
        with self.orch.db.read() as session:
            row = session.get(Action, action_id)
            if row is None or row.status != "pending":
                return None
            intervals = self.orch.settings.automation_action_retry_intervals
            return time.time() + intervals[min(max(row.attempts, 1), len(intervals)) - 1]
