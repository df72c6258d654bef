"""``BaseWorker``: the one loop every worker type shares.

claim → render the job configuration → ``create`` → report the infrastructure id (once) →
``start`` → ``wait`` → report a crash if the infrastructure ended without a final state →
free the slot.

A worker type adds only its typed job variables (``JobConfigT``), its handle
(``HandleT``) and the hooks ``create`` / ``wait`` (required), ``start`` / ``kill``
(optional); ``docs/writing-a-worker.md`` is the contract.
Threads: one claims (long-polling the API), one heartbeats (extending leases, learning of
cancellations), and one watches each active run. Nothing here touches Redis or the
database: the worker only needs the API URL and key.
"""

from __future__ import annotations

import builtins
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from pydantic import BaseModel, ValidationError

from flowyard import schemas as s
from flowyard.blocks import base_job_template, references, render_job_configuration
from flowyard.client import FlowyardClient, is_transient
from flowyard.client.log_shipper import LogShipper, log_record
from flowyard.errors import ApiError, FlowyardError, InvalidInput
from flowyard.states import SUSPENDED, StateType
from flowyard.workers.status import WorkerMetrics

log = structlog.get_logger()

CANCEL, SHUTDOWN = "cancel", "shutdown"
ENGINE_SETTLED = 0  # the engine's exit code once the API kept the run's final state
UNLIMITED_BATCH = 10  # runs asked for per claim by a worker without --limit
SIGNAL_CHECK_SECONDS = 0.25
"""The main thread waits in slices this long: a signal the kernel gave to another thread
(SIGINT, SIGTERM) runs its Python handler only when the main thread wakes, and a wait
without a timeout was seen to sleep through a Ctrl-C."""

OutputSink = Callable[[str, str], None]
"""Called with (stream name, line) for every line the infrastructure prints."""


class Infrastructure(BaseModel):
    """What a worker type launched; ``id`` is the opaque string recorded on the run."""

    id: str


JobConfigT = TypeVar("JobConfigT", bound=BaseModel)
"""A worker type's job variables: the rendered job configuration of one run."""
HandleT = TypeVar("HandleT", bound=Infrastructure)
"""A worker type's handle on the infrastructure of one run."""


@dataclass
class ActiveRun(Generic[HandleT]):
    claimed: s.ClaimedRun
    infrastructure: HandleT | None = None
    stop_reason: str | None = None  # CANCEL or SHUTDOWN once the worker decided to kill it
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.claimed.run.id


def default_name(worker_type: str) -> str:
    """A worker's name when none is given: its type, the host and a random suffix."""
    return f"{worker_type}-{socket.gethostname()}-{uuid.uuid4().hex[:6]}"


class BaseWorker(Generic[JobConfigT, HandleT]):
    """Claims runs of one pool and launches each on this worker type's infrastructure."""

    type: ClassVar[str] = ""
    variables: builtins.type[JobConfigT]
    """The job variables model: its JSON schema is the pool's default base job template,
    and each run's rendered configuration is validated into it."""
    supports_kill: ClassVar[bool] = False
    requires: ClassVar[tuple[str, str] | None] = None
    """The package this type imports beyond the base install, and the extra that brings it:
    ``("docker", "docker")`` is ``pip install 'flowyard[docker]'``."""
    kills_at_shutdown: ClassVar[bool] = True
    """False: runs still going when the shutdown grace ends are left running (and watched
    by no one) for another worker to adopt, as Kubernetes Jobs outlive their worker."""

    def __init__(
        self,
        client: FlowyardClient,
        pool: str,
        *,
        name: str | None = None,
        limit: int | None = None,
        queues: list[str] | None = None,
        prefetch_seconds: float = 0.0,
        heartbeat_seconds: float = 10.0,
        claim_wait: float = 10.0,
        grace_seconds: float = 30.0,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        if limit is not None and limit < 1:
            raise InvalidInput("--limit must be at least 1")
        self.client = client
        self.pool = pool
        self.name = name or default_name(self.type)
        self.limit = limit
        self.queues = queues or None
        self.prefetch_seconds = prefetch_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.claim_wait = claim_wait
        self.grace_seconds = grace_seconds
        self.log = log.bind(pool=pool, worker=self.name)
        self._active: dict[str, ActiveRun[HandleT]] = {}
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # stop_now: no grace period
        self._closed = threading.Event()
        self._beating = threading.Lock()  # a late beat never follows the goodbye
        self._said_goodbye = False
        self._logs = LogShipper(client).start()
        self.metrics = (metrics or WorkerMetrics()).of_pool(pool, lambda: len(self._active))
        """This worker's series; ``metrics`` is shared by the workers of one process."""

    # -- what a worker type provides --------------------------------------------------------

    def create(
        self, claimed: s.ClaimedRun, configuration: JobConfigT, output: OutputSink
    ) -> HandleT:
        """Required. Create the infrastructure of one run and return its handle (without
        blocking). A type that can create it stopped (a container, a Job) does, and starts
        it in ``start``: the base reports the handle in between, so a run's infrastructure
        is never unknown. The others (a process, a Lambda invocation) start it here."""
        raise NotImplementedError

    def start(self, infrastructure: HandleT) -> None:
        """Optional. Start what ``create`` made; called once its handle is reported.
        The default does nothing: ``create`` started it."""

    def wait(self, infrastructure: HandleT) -> int:
        """Required. Block until the infrastructure ends; return its exit code."""
        raise NotImplementedError

    def exit_code_is_the_engines(self, infrastructure: HandleT) -> bool:
        """Optional. True when ``wait`` returns the engine's own exit code (no command of
        the job's in between): ``ENGINE_SETTLED`` then means the API kept the run's final
        state, and the worker reads nothing back. Default False: it reads the run."""
        return False

    def kill(self, infrastructure: HandleT, grace_seconds: float) -> None:
        """Optional, with ``supports_kill``. Stop the infrastructure: politely, then by
        force after ``grace_seconds``."""
        raise NotImplementedError

    @classmethod
    def default_base_job_template(cls) -> dict[str, Any]:
        return base_job_template(cls.variables)

    # -- the loop ---------------------------------------------------------------------------

    def ensure_pool(self) -> bool:
        """Create the pool with this type's default template when it does not exist yet
        (True then); refuse a pool of another type."""
        if self.pool_exists():
            return False
        self.create_pool()
        return True

    def pool_exists(self) -> bool:
        """Whether the pool exists; raises when it is of another type or when this worker's
        key may not serve it."""
        try:
            pool = self.client.read_work_pool(self.pool)
        except ApiError as exc:
            if exc.status_code == 404:
                return False
            if exc.status_code == 403:
                raise InvalidInput(f"may not serve work pool {self.pool!r}: {exc.message}") from exc
            raise
        if pool.type != self.type:
            raise InvalidInput(
                f"work pool {self.pool!r} is of type {pool.type!r}, not {self.type!r}"
            )
        return True

    def create_pool(self) -> None:
        """Create the pool with this type's default base job template."""
        body = s.WorkPoolCreate(
            name=self.pool, type=self.type, base_job_template=self.default_base_job_template()
        )
        self.client.create_work_pool(body)
        self.log.info("work_pool_created", type=self.type)

    def setup(self) -> None:
        """The pool exists (``ensure_pool``) and the API knows this worker."""
        self.ensure_pool()
        self.heartbeat()

    def run(self, *, once: bool = False) -> None:
        """Claim and run until ``stop()`` (or, with ``once``, one claim's runs); then drain."""
        self.setup()
        threading.Thread(
            target=self._heartbeat_loop, name="flowyard-heartbeat", daemon=True
        ).start()
        self.log.info("worker_started", limit=self.limit, queues=self.queues, once=once)
        if once:
            self.run_once()
            with self._changed:
                self._changed.wait_for(lambda: not self._active or self._stopping.is_set())
        else:
            threading.Thread(target=self._claim_loop, name="flowyard-claims", daemon=True).start()
            while not self._stopping.wait(SIGNAL_CHECK_SECONDS):
                pass  # bounded waits: a signal that another thread took is handled within one
        self.shutdown()

    def run_once(self, wait: float | None = None) -> list[str]:
        """Claim once (long-polling up to ``wait`` seconds), launch what came, return run ids."""
        capacity = self._capacity()
        if capacity == 0:
            return []
        body = s.ClaimRequest(
            worker_name=self.name,
            max_runs=capacity,
            queues=self.queues,
            prefetch_seconds=self.prefetch_seconds,
            wait=self.claim_wait if wait is None else wait,
        )
        claimed = self.client.claim(self.pool, body)
        for run in claimed:
            if self._stopping.is_set():
                self._give_back(run)
            else:
                self._start(run)
        return [run.run.id for run in claimed]

    def stop(self) -> None:
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until no run is active; False if some still are after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._active, timeout)

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called: no more claims, the runs going are finishing."""
        return self._stopping.is_set()

    def stop_now(self) -> None:
        """Stop without the grace period: runs still going are killed at once and reported
        Crashed (a second Ctrl-C)."""
        self._hurry.set()
        self.stop()

    def shutdown(self) -> None:
        """Stop claiming, give runs ``grace_seconds`` to finish (none after ``stop_now``),
        then kill and report the rest."""
        self.stop()
        with self._changed:
            self._changed.wait_for(
                lambda: not self._active or self._hurry.is_set(), self.grace_seconds
            )
        if self._active:
            grace = 0.0 if self._hurry.is_set() else self.grace_seconds
            for active in list(self._active.values()):
                if not self.kills_at_shutdown:
                    self.log.info("run_left_running", run_id=active.run_id)
                    continue
                self.log.warning("run_killed_at_shutdown", run_id=active.run_id)
                self._kill(active, SHUTDOWN, grace)
            if self.kills_at_shutdown:
                self.join(grace + 10)
        self._closed.set()
        self._say_goodbye()
        self._logs.close()
        self.log.info("worker_stopped")

    @property
    def active_run_ids(self) -> list[str]:
        with self._changed:
            return list(self._active)

    def _capacity(self) -> int:
        with self._changed:
            return max(0, self._capacity_unlocked())

    def _claim_loop(self) -> None:
        backoff = 0.5
        while not self._stopping.is_set():
            with self._changed:
                self._changed.wait_for(
                    lambda: self._stopping.is_set() or self._capacity_unlocked() > 0
                )
            if self._stopping.is_set():
                return
            try:
                self.run_once()
                backoff = 0.5
            except FlowyardError as exc:
                self.metrics.claim_errors.inc()
                level = self.log.warning if is_transient(exc) else self.log.error
                level("claim_failed", error=str(exc), retry_in=backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _capacity_unlocked(self) -> int:
        """Runs this worker may still take (10 per claim when it has no limit)."""
        return UNLIMITED_BATCH if self.limit is None else self.limit - len(self._active)

    def _start(self, claimed: s.ClaimedRun) -> None:
        active: ActiveRun[HandleT] = ActiveRun(claimed)
        thread = threading.Thread(
            target=self._execute, args=(active,), name=f"run-{claimed.run.id[:8]}", daemon=True
        )
        active.thread = thread
        with self._changed:
            self._active[claimed.run.id] = active
        thread.start()

    def _give_back(self, claimed: s.ClaimedRun) -> None:
        """Return a run claimed while stopping to the queue, for another worker."""
        change = s.StateChange(
            type=StateType.SCHEDULED,
            token=claimed.token,
            message="worker stopping; returned to the queue",
        )
        self._report(claimed, change)

    # -- one run ----------------------------------------------------------------------------

    def _execute(self, active: ActiveRun[HandleT]) -> None:
        claimed = active.claimed
        run_log = self.log.bind(run_id=claimed.run.id)
        try:
            try:
                infrastructure = self._launch(active)
            except Exception as exc:  # a launch failure must never leave the run Pending
                run_log.exception("run_launch_failed")
                self._settle(active, f"the worker could not launch the flow run: {exc}")
                return
            self.metrics.launched.inc()
            run_log.info("run_launched", infrastructure_id=infrastructure.id)
            if active.stop_reason:
                self._kill(active, active.stop_reason)
            try:
                exit_code = self.wait(infrastructure)
            except Exception as exc:
                run_log.exception("run_lost")
                self._settle(active, f"the worker lost track of the flow run's process: {exc}")
                return
            run_log.info("run_exited", exit_code=exit_code)
            if exit_code == ENGINE_SETTLED and self.exit_code_is_the_engines(infrastructure):
                return  # a process that exits 0 without that (os._exit) is the reconciler's
            message = f"the infrastructure exited with code {exit_code} without a final state"
            self._settle(active, message)
        finally:
            with self._changed:
                self._active.pop(claimed.run.id, None)
                self._changed.notify_all()

    def _launch(self, active: ActiveRun[HandleT]) -> HandleT:
        """``create``, report the handle (the one report of it), ``start``."""
        claimed = active.claimed
        configuration = self.job_configuration(claimed)
        infrastructure = self.create(claimed, configuration, self._output_sink(claimed))
        self._report_infrastructure(claimed, infrastructure)
        self.start(infrastructure)
        active.infrastructure = infrastructure  # a cancel asked for until now kills it next
        return infrastructure

    def job_configuration(self, claimed: s.ClaimedRun) -> JobConfigT:
        """The pool's template rendered with the deployment's then the run's job variables."""
        layers = [claimed.deployment.job_variables] if claimed.deployment else []
        layers.append(claimed.run.job_variables)
        rendered = self._resolve_blocks(
            render_job_configuration(claimed.base_job_template, *layers)
        )
        try:
            return self.variables.model_validate(
                {k: v for k, v in rendered.items() if v is not None}
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            raise InvalidInput(f"invalid job configuration: {where}: {error['msg']}") from exc

    def engine_env(self, claimed: s.ClaimedRun) -> dict[str, str]:
        """What the engine of a run needs to find the API and prove its claim: the run's
        own token, never this worker's key (a flow's code may read its environment)."""
        env = {
            "FLOWYARD_API_URL": self.client.api_url,
            "FLOWYARD_CLAIM_TOKEN": claimed.token,
            "FLOWYARD_FLOW_RUN_ID": claimed.run.id,
            "PYTHONUNBUFFERED": "1",
        }
        if claimed.run_token:
            env["FLOWYARD_API_KEY"] = claimed.run_token
        return env

    def _resolve_blocks(self, rendered: dict[str, Any]) -> dict[str, Any]:
        """Replace ``{{ block.TYPE/NAME[.field] }}`` with the blocks (secrets in clear)."""
        needed = references.needed(rendered)
        if not needed:
            return rendered
        documents = {}
        for ref in sorted(needed):
            slug, _, name = ref.partition("/")
            documents[ref] = self.client.read_block(slug, name, include_secrets=True).data
        resolved: dict[str, Any] = references.resolve(rendered, documents)
        return resolved

    def _report_infrastructure(self, claimed: s.ClaimedRun, infrastructure: HandleT) -> None:
        """Tell the API the run's infrastructure id (best effort: the run goes on without)."""
        body = s.InfrastructureReport(token=claimed.token, infrastructure_id=infrastructure.id)
        try:
            self.client.report_infrastructure(claimed.run.id, body)
        except FlowyardError as exc:
            self.log.warning("infrastructure_not_recorded", run_id=claimed.run.id, error=str(exc))

    def _settle(self, active: ActiveRun[HandleT], crash_message: str) -> None:
        """After the infrastructure ended: Crashed, or Cancelled when a cancel was asked for."""
        claimed = active.claimed
        try:
            current = self.client.read_flow_run(claimed.run.id).state
        except ApiError as exc:
            self.log.error("run_state_unknown", run_id=claimed.run.id, error=str(exc))
            return
        state = current.type
        if state.is_terminal or (state is StateType.PAUSED and current.name == SUSPENDED):
            return  # a suspended run's process exits: a resume schedules it again
        if state is StateType.CANCELLING or active.stop_reason == CANCEL:
            final, message = StateType.CANCELLED, "cancelled by request"
        elif active.stop_reason == SHUTDOWN:
            how = "was stopped at once" if self._hurry.is_set() else "shut down and its grace ended"
            final, message = StateType.CRASHED, f"killed: the worker {how}"
        else:
            final, message = StateType.CRASHED, crash_message
            self.metrics.crashed.inc()
        change = s.StateChange(type=final, token=claimed.token, message=message)
        self._report(claimed, change)

    def _report(self, claimed: s.ClaimedRun, change: s.StateChange) -> None:
        try:
            result = self.client.set_flow_run_state(claimed.run.id, change)
        except ApiError as exc:
            self.log.error(
                "state_not_reported", run_id=claimed.run.id, state=change.type, error=str(exc)
            )
            return
        if not result.accepted:
            self.log.info(
                "state_refused", run_id=claimed.run.id, state=change.type, reason=result.reason
            )

    def _kill(self, active: ActiveRun[HandleT], reason: str, grace: float | None = None) -> None:
        active.stop_reason = reason
        if active.infrastructure is None or not self.supports_kill:
            return
        try:
            self.kill(active.infrastructure, self.grace_seconds if grace is None else grace)
        except Exception:
            self.log.exception("kill_failed", run_id=active.run_id)

    def _output_sink(self, claimed: s.ClaimedRun) -> OutputSink:
        """Lines the infrastructure prints become the run's logs (stderr as warnings)."""

        def sink(stream: str, line: str) -> None:
            self._logs.put(
                log_record(
                    flow_run_id=claimed.run.id,
                    level=30 if stream == "stderr" else 20,
                    message=line,
                    timestamp=datetime.now(UTC),
                    source=stream,
                )
            )

        return sink

    # -- heartbeats -------------------------------------------------------------------------

    def heartbeat(self) -> s.HeartbeatResponse:
        body = s.WorkerHeartbeat(worker_name=self.name, type=self.type, run_ids=self.active_run_ids)
        with self._beating:
            if self._said_goodbye:
                return s.HeartbeatResponse(held=[], cancelling=[])
            response = self.client.worker_heartbeat(self.pool, body)
        self.metrics.last_heartbeat_ok = time.monotonic()
        for run_id in response.cancelling:
            active = self._active.get(run_id)
            if active and not active.stop_reason:
                self.log.info("run_cancelling", run_id=run_id)
                threading.Thread(target=self._kill, args=(active, CANCEL), daemon=True).start()
        return response

    def _say_goodbye(self) -> None:
        """Tell the API this worker stopped, so it is shown offline at once (best effort:
        an API that cannot hear it marks it offline when its beats stay silent)."""
        body = s.WorkerHeartbeat(worker_name=self.name, type=self.type, stopping=True)
        with self._beating:
            self._said_goodbye = True
            try:
                self.client.worker_goodbye(self.pool, body)
            except FlowyardError as exc:
                self.log.warning("goodbye_failed", error=str(exc))

    def _heartbeat_loop(self) -> None:
        """Beat until shut down, draining included, so running runs keep their leases."""
        while not self._closed.wait(self.heartbeat_seconds):
            try:
                self.heartbeat()
            except FlowyardError as exc:
                self.metrics.heartbeat_errors.inc()
                self.log.warning("heartbeat_failed", error=str(exc))
