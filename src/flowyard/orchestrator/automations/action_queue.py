"""Automation actions as RQ jobs on the server's Redis, run by a worker inside each API process.

``enqueue`` puts one job per action row on the RQ queue ``QUEUE`` (JSON-serialized, job id
``automation-action-<row id>``, so queuing a row twice is one job) with RQ's retries; the
job is ``actions.run_action(row id)``. Every API replica runs one ``SimpleWorker`` (no fork)
in a daemon thread, and RQ's scheduler in another (it moves retries that are due back to
the queue; one replica at a time holds its lock), so the replicas share the jobs. Failed
jobs stay in RQ's failed-job registry for ``FAILED_TTL`` (``rq info`` shows them).

The store is the truth: ``requeue_stale_once``, a led service, queues again a pending row
whose job was never queued (the process stopped between the firing's commit and
``enqueue``) or that Redis no longer has.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import redis
import structlog
from rq import Queue, Retry, SimpleWorker
from rq.exceptions import DuplicateJobError
from rq.job import Job, JobStatus
from rq.scheduler import RQScheduler
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty
from sqlalchemy import select, update

from flowyard.errors import QueueUnavailable
from flowyard.orchestrator.automations import actions
from flowyard.orchestrator.automations.cluster_actions import ClusterActionQueue
from flowyard.pools.topology import parse, sync_client
from flowyard.store import models as m

if TYPE_CHECKING:
    from flowyard.orchestrator.runtime import Orchestrator

log = structlog.get_logger()

QUEUE = "flowyard-automation-actions"
JOB_FUNCTION = "flowyard.orchestrator.automations.actions.run_action"
FAILED_TTL = 7 * 24 * 3600
RESULT_TTL = 24 * 3600
POLL_SECONDS = 1
"""How long the worker blocks on an empty queue before it checks whether to stop."""
SCHEDULER_SECONDS = 1.0
RESTART_SECONDS = 2.0
STOP_SECONDS = 5.0
SWEEP_BATCH = 500
ENDED = {JobStatus.FINISHED, JobStatus.FAILED, JobStatus.STOPPED, JobStatus.CANCELED}
NOT_FINAL = ("pending", "running")


def open_action_queue(redis_url: str, orch: Orchestrator) -> ActionQueue | ClusterActionQueue:
    """RQ on one Redis or a Sentinel-watched primary; a queue of our own on a Redis Cluster,
    where RQ does not work (see ``cluster_actions``)."""
    if parse(redis_url).kind == "cluster":
        return ClusterActionQueue(redis_url, orch)
    return ActionQueue(redis_url, orch)


def job_id(action_id: str) -> str:
    return f"automation-action-{action_id}"


class ActionQueue:
    """Queues action rows (``m.AutomationAction``) as RQ jobs and runs them in-process."""

    def __init__(self, redis_url: str, orch: Orchestrator) -> None:
        self.redis_url = redis_url
        self.orch = orch
        self.redis = sync_client(redis_url, socket_connect_timeout=5.0)
        self.queue = Queue(
            QUEUE,
            connection=self.redis,
            serializer=JSONSerializer,
            death_penalty_class=TimerDeathPenalty,
        )
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._worker: _ThreadWorker | None = None

    def enqueue(self, action_ids: list[str]) -> None:
        """Queue the actions of a committed firing (blocking; call it off the event loop).

        QueueUnavailable when Redis cannot be reached: the rows stay pending and
        ``requeue_stale_once`` queues them later."""
        for action_id in action_ids:
            self._put(action_id)
        self._mark_enqueued(action_ids)

    def start(self) -> None:
        """Start running queued actions in this process (called from the event loop)."""
        actions.install(self.orch, asyncio.get_running_loop())
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._work, name="automation-actions", daemon=True),
            threading.Thread(target=self._schedule, name="automation-retries", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop running actions (blocking: call it off the event loop, which a running
        action may be waiting on). An action still running after ``STOP_SECONDS`` is
        left to its thread; its row is found by the sweep of another replica or the
        next start."""
        self._stop.set()
        self._unblock_worker()
        for thread in self._threads:
            thread.join(STOP_SECONDS)
        self._threads = []
        actions.uninstall()
        with contextlib.suppress(Exception):
            self.redis.close()

    def _unblock_worker(self) -> None:
        """End the worker's blocking poll now, as if it had timed out: stopping an idle
        server does not wait out ``POLL_SECONDS``."""
        worker = self._worker
        if worker is not None and worker.polling_as is not None:
            with contextlib.suppress(redis.RedisError):
                self.redis.client_unblock(worker.polling_as, error=True)

    # -- queuing -------------------------------------------------------------------------

    def _put(self, action_id: str) -> None:
        settings = self.orch.settings
        retries = settings.automation_action_retries
        intervals = settings.automation_action_retry_intervals
        try:
            self.queue.enqueue_call(
                JOB_FUNCTION,
                args=(action_id,),
                job_id=job_id(action_id),
                unique=True,
                retry=Retry(retries, intervals) if retries else None,
                timeout=int(settings.automation_action_timeout_seconds) + 60,
                result_ttl=RESULT_TTL,
                failure_ttl=FAILED_TTL,
                description=f"automation action {action_id}",
            )
        except DuplicateJobError:
            log.debug("automation_action_already_queued", action_id=action_id)
        except redis.RedisError as exc:
            raise QueueUnavailable(f"automation actions cannot be queued: {exc}") from exc

    def _mark_enqueued(self, action_ids: Iterable[str]) -> None:
        ids = list(action_ids)
        if not ids:
            return
        with self.orch.db.session() as session:
            session.execute(
                update(m.AutomationAction)
                .where(m.AutomationAction.id.in_(ids))
                .values(enqueued=datetime.now(UTC))
            )

    # -- the sweep -----------------------------------------------------------------------

    def requeue_stale(self) -> int:
        """Queue again the pending rows that have no job (blocking); how many it queued."""
        grace = timedelta(seconds=self.orch.settings.automation_action_requeue_after_seconds)
        before = datetime.now(UTC) - grace
        with self.orch.db.read() as session:
            query = (
                select(m.AutomationAction.id, m.AutomationAction.enqueued)
                .join(m.AutomationFiring, m.AutomationFiring.id == m.AutomationAction.firing_id)
                .where(m.AutomationAction.status.in_(NOT_FINAL), m.AutomationFiring.fired < before)
                .limit(SWEEP_BATCH)
            )
            rows = session.execute(query).all()
        never = [row.id for row in rows if row.enqueued is None]
        queued = [row.id for row in rows if row.enqueued is not None and row.enqueued < before]
        lost = [action_id for action_id in queued if self._job_lost(action_id)]
        again = self._reset(lost)
        for action_id in never + again:
            self._put(action_id)
        self._mark_enqueued(never + again)
        if never or again:
            log.info("automation_actions_requeued", never_queued=len(never), lost=len(again))
        return len(never) + len(again)

    def _job_lost(self, action_id: str) -> bool:
        """Redis no longer has the row's job, or it ended without the row's outcome."""
        job = self._fetch(action_id)
        return job is None or job.get_status(refresh=False) in ENDED

    def _fetch(self, action_id: str) -> Job | None:
        try:
            return Job.fetch(job_id(action_id), connection=self.redis, serializer=JSONSerializer)
        except Exception:  # NoSuchJobError, or a job hash that no longer reads
            return None

    def _reset(self, action_ids: list[str]) -> list[str]:
        """Rows of lost jobs back to pending (their jobs deleted); the ones out of attempts
        fail instead. Read after the jobs were: a job ends only after its row's outcome
        is committed, so a row still not final here was truly left behind."""
        if not action_ids:
            return []
        retry: list[str] = []
        out_of_attempts: list[str] = []
        with self.orch.db.read() as session:
            query = select(m.AutomationAction).where(
                m.AutomationAction.id.in_(action_ids),
                m.AutomationAction.status.in_(NOT_FINAL),
            )
            for row in session.scalars(query):
                tried_all = row.attempts > self.orch.settings.automation_action_retries
                (out_of_attempts if tried_all else retry).append(row.id)
        for action_id in retry + out_of_attempts:
            job = self._fetch(action_id)
            if job is not None:
                job.delete()
        for action_id in out_of_attempts:
            error = "its RQ job ended or was lost before it recorded an outcome"
            actions.record_lost(self.orch, action_id, error)
        with self.orch.db.session() as session:
            session.execute(
                update(m.AutomationAction)
                .where(m.AutomationAction.id.in_(retry))
                .values(status="pending")
            )
        return retry

    # -- the worker ----------------------------------------------------------------------

    def _work(self) -> None:
        """Run jobs until ``stop``; a worker that quits (Redis gone) is started again."""
        # one connection, so that the client id it polls with is known (``stop`` unblocks it)
        connection = sync_client(
            self.redis_url, socket_connect_timeout=5.0, single_connection_client=True
        )
        try:
            while not self._stop.is_set():
                worker = _ThreadWorker(
                    [self.queue],
                    name=f"flowyard-{uuid.uuid4().hex[:12]}",
                    connection=connection,
                    serializer=JSONSerializer,
                )
                worker.stopping = self._stop
                self._worker = worker
                try:
                    worker.work(logging_level="WARNING")
                except Exception:
                    log.exception("automation_action_worker_failed")
                self._stop.wait(RESTART_SECONDS)
        finally:
            connection.close()

    def _schedule(self) -> None:
        """RQ's scheduler, in a thread: it moves due retries back to the queue while this
        replica holds its lock (RQ's own forks a process, which a threaded server must not)."""
        scheduler = RQScheduler(
            [QUEUE], connection=self.redis, serializer=JSONSerializer, logging_level="WARNING"
        )
        try:
            while not self._stop.is_set():
                try:
                    if scheduler.acquired_locks != {QUEUE}:
                        scheduler.acquire_locks()
                    if scheduler.acquired_locks:
                        scheduler.heartbeat()
                        scheduler.enqueue_scheduled_jobs()
                except redis.RedisError as exc:
                    log.warning("automation_retry_scheduler_waiting", error=str(exc))
                self._stop.wait(SCHEDULER_SECONDS)
        finally:
            with contextlib.suppress(Exception):
                scheduler.stop()


class _Stopped(Exception):
    """Raised inside RQ's poll loop once the server stops: RQ's reconnect loop (Redis
    away) retries for ever and only calls back into the worker through ``heartbeat``."""


class _ThreadWorker(SimpleWorker):
    """RQ's ``SimpleWorker`` made to live in a thread of the API process: no signal
    handlers (only the main thread may install them, and they are the server's), a
    timer instead of SIGALRM for job timeouts, the process title left alone, a poll
    that returns when the server stops (Redis away too), and no command channel (RQ's
    ``shutdown`` command would SIGINT the whole server)."""

    death_penalty_class = TimerDeathPenalty
    max_connection_wait_time = 2.0  # RQ's reconnect backoff cap: a stop is seen within it
    stopping: threading.Event
    polling_as: int | None = None  # the Redis client id of its blocking poll
    _polling = _dequeued = False

    def _install_signal_handlers(self) -> None:
        pass

    def subscribe(self) -> None:
        pass

    def procline(self, message: str) -> None:
        pass

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        if self._polling and not self._dequeued and self.stopping.is_set():
            raise _Stopped  # never once a job is taken: it runs (it would sit in limbo)
        super().heartbeat(*args, **kwargs)

    def reorder_queues(self, reference_queue: Any) -> None:
        self._dequeued = True  # RQ calls this right after it took a job off a queue
        super().reorder_queues(reference_queue)

    def dequeue_job_and_maintain_ttl(
        self, timeout: int | None, max_idle_time: int | None = None
    ) -> Any:
        self._polling = True
        try:
            while not self.stopping.is_set():
                self.polling_as = self.connection.client_id()
                self._dequeued = False
                try:
                    found = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, POLL_SECONDS)
                except redis.ResponseError:
                    if self.stopping.is_set():  # ``ActionQueue.stop`` unblocked the poll
                        return None
                    raise
                if found is not None:
                    return found
            return None
        except _Stopped:
            return None
        finally:
            self._polling = False


async def requeue_stale_once(orch: Orchestrator) -> int:
    """The led sweep: pending actions whose job was never queued, or was lost, queued again."""
    return await orch.in_thread(orch.action_queue.requeue_stale)
