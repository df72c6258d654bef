"""The Kubernetes worker: each flow run is a ``batch/v1`` Job, through the official client.

Create: the Job manifest is built and checked (pure, ``manifest`` and ``validation``); the
base records its ``namespace:name`` on the run as the infrastructure id, and only then
does ``start`` create the Job (``jobs``). Wait: the pods of the Job are watched until one
starts (pending reasons go to the run's logs; a pod not started within
``pod_watch_timeout_seconds`` ends the run Crashed and its Job is deleted, at once when
admission refused it), its logs are
followed into the run's logs, and the Job is watched until it completes, fails or is
deleted (``job_watch``). The watches resume through timeouts, 410 Gone and API-server
restarts (``watching``): only a Job that really ended settles the run. Kill: the Job is
deleted with foreground propagation. Jobs of a worker that died are found by their labels
and adopted or settled (``adoption``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from flowyard import schemas as s
from flowyard.blocks import render_job_configuration
from flowyard.errors import ApiError, FlowyardError, KubernetesError
from flowyard.states import StateType
from flowyard.workers.base import BaseWorker, OutputSink
from flowyard.workers.kubernetes import adoption
from flowyard.workers.kubernetes.cluster import ClusterClients
from flowyard.workers.kubernetes.job_watch import WatchOptions, watch_job
from flowyard.workers.kubernetes.jobs import (
    JobInfrastructure,
    create_job,
    delete_job,
    list_pool_jobs,
)
from flowyard.workers.kubernetes.manifest import build_manifest, job_suffix, run_identity
from flowyard.workers.kubernetes.validation import check_manifest
from flowyard.workers.kubernetes.variables import KubernetesVariables

__all__ = ["JobInfrastructure", "KubernetesWorker"]


class KubernetesWorker(BaseWorker[KubernetesVariables, JobInfrastructure]):
    """Runs each flow run of its pool as a Job; adopts the Jobs of workers that died."""

    type: ClassVar[str] = "kubernetes"
    requires: ClassVar[tuple[str, str] | None] = ("kubernetes", "kubernetes")
    variables = KubernetesVariables
    supports_kill: ClassVar[bool] = True
    kills_at_shutdown: ClassVar[bool] = False

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._clients = ClusterClients()
        self._watches: dict[str, WatchOptions] = {}
        self._adopting: dict[str, JobInfrastructure] = {}
        self._unsubmitted: dict[str, dict[str, Any]] = {}  # manifests ``start`` submits

    # -- create / start / wait / kill -------------------------------------------------------

    def create(
        self, claimed: s.ClaimedRun, configuration: KubernetesVariables, output: OutputSink
    ) -> JobInfrastructure:
        """Build and check the Job's manifest and name the Job (``start`` creates it), or
        hand back the Job being adopted for this run."""
        watch = WatchOptions(
            output, configuration.pod_watch_timeout_seconds, configuration.stream_output
        )
        adopted = self._adopting.pop(claimed.run.id, None)
        if adopted is not None:
            self._watches[adopted.id] = watch
            return adopted
        with _also_in_run_logs(output, FlowyardError):
            manifest = self._manifest(claimed, configuration)
            cluster = self._clients.key(configuration.cluster())
        metadata = manifest["metadata"]
        infrastructure = JobInfrastructure.of(
            metadata["namespace"], metadata["name"], run_id=claimed.run.id, cluster=cluster
        )
        self._watches[infrastructure.id] = watch
        self._unsubmitted[infrastructure.id] = manifest
        return infrastructure

    def start(self, infrastructure: JobInfrastructure) -> None:
        """Create the Job (an adopted one exists already)."""
        manifest = self._unsubmitted.pop(infrastructure.id, None)
        if manifest is None:
            return
        output = self._watches[infrastructure.id].output
        try:
            with _also_in_run_logs(output, KubernetesError):
                create_job(self._clients.batch(infrastructure.cluster), infrastructure, manifest)
        except Exception:
            self._watches.pop(infrastructure.id, None)
            raise

    def wait(self, infrastructure: JobInfrastructure) -> int:
        watch = self._watches.pop(infrastructure.id)
        cluster = infrastructure.cluster
        with _also_in_run_logs(watch.output, KubernetesError):
            end = watch_job(
                self._clients.core(cluster), self._clients.batch(cluster), infrastructure, watch
            )
        if end.crash_message is not None:
            self._settle_run(infrastructure.run_id, end.crash_message)
        return end.code

    def kill(self, infrastructure: JobInfrastructure, grace_seconds: float) -> None:
        """Delete the Job, foreground: it is gone only once its pods are."""
        delete_job(self._clients.batch(infrastructure.cluster), infrastructure, "Foreground")

    def shutdown(self) -> None:
        """Stop as any worker does, then close the API clients."""
        try:
            super().shutdown()
        finally:
            self._clients.close()

    def _manifest(
        self, claimed: s.ClaimedRun, configuration: KubernetesVariables
    ) -> dict[str, Any]:
        """The run's Job manifest, checked; its API key is the run's token (``engine_env``)."""
        identity = run_identity(claimed, self.pool, self.name)
        manifest = build_manifest(configuration, identity, self.engine_env(claimed), job_suffix())
        check_manifest(manifest)
        return manifest

    def _settle_run(self, run_id: str, message: str) -> None:
        """Settle now with this message (Crashed, or Cancelled if a cancel was asked for)."""
        active = self._active.get(run_id)
        if active is not None:
            self._settle(active, message)

    # -- Jobs of workers that died (see ``adoption``) --------------------------------------

    def setup(self) -> None:
        """Create the pool if needed, then look for orphaned Jobs now and periodically."""
        super().setup()
        threading.Thread(target=self._adoption_loop, name="flowyard-adoption", daemon=True).start()

    def _adoption_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.adopt_orphans()
            except FlowyardError as exc:
                self.log.warning("adoption_failed", error=str(exc))
            if self._stopping.wait(3 * self.heartbeat_seconds):
                return

    def adopt_orphans(self) -> dict[str, adoption.Action]:
        """Settle or adopt the Jobs of this pool whose worker is gone; return what was done."""
        template = self.client.read_work_pool(self.pool).base_job_template
        defaults = self._resolve_blocks(render_job_configuration(template))
        config = KubernetesVariables.model_validate(
            {k: v for k, v in defaults.items() if v is not None}
        )
        cluster = self._clients.key(config.cluster())
        documents = list_pool_jobs(self._clients.batch(cluster), config.namespace, self.pool)
        online = {w.name for w in self.client.list_workers(self.pool) if w.status == "ONLINE"}
        done: dict[str, adoption.Action] = {}
        for document in documents:
            job = adoption.found_job(document)
            if job is None or job.run_id in self._active:
                continue
            run = self._read_run(job.run_id)
            action, why = adoption.decide(job, run, online=online, me=self.name)
            if action is not adoption.Action.LEAVE:
                self.log.info("orphan_job", job=job.name, run_id=job.run_id, action=action, why=why)
                self._apply(action, why, job, run, template, cluster)
                done[job.run_id] = action
        return done

    def _apply(
        self,
        action: adoption.Action,
        why: str,
        job: adoption.FoundJob,
        run: s.FlowRun | None,
        template: dict[str, Any],
        cluster: str,
    ) -> None:
        handle = JobInfrastructure.of(job.namespace, job.name, run_id=job.run_id, cluster=cluster)
        if action is adoption.Action.CLEAN_UP:
            delete_job(self._clients.batch(cluster), handle, "Background")
        elif action is adoption.Action.CRASH and run is not None:
            change = s.StateChange(type=StateType.CRASHED, message=why)
            self.client.set_flow_run_state(run.id, change)
        elif action is adoption.Action.ADOPT and run is not None and job.token:
            deployment = (
                self.client.read_deployment(run.deployment_id) if run.deployment_id else None
            )
            claimed = s.ClaimedRun(
                run=run, token=job.token, deployment=deployment, base_job_template=template
            )
            self._adopting[run.id] = handle
            self._start(claimed)

    def _read_run(self, run_id: str) -> s.FlowRun | None:
        try:
            return self.client.read_flow_run(run_id)
        except ApiError as exc:
            if exc.status_code == 404:
                return None
            raise


@contextmanager
def _also_in_run_logs(output: OutputSink, errors: type[FlowyardError]) -> Iterator[None]:
    """An error of type ``errors`` goes to the run's logs too, and on to the caller."""
    try:
        yield
    except errors as exc:
        output("stderr", f"flowyard kubernetes worker: {exc}")
        raise
