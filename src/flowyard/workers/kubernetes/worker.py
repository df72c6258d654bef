"""The Kubernetes worker: each flow run is a ``batch/v1`` Job, through the official client.

Launch: the Job manifest is built and checked (pure, ``manifest`` and ``validation``), its
``namespace:name`` recorded on the run as the infrastructure id, and only then is the Job
created. Wait: the pods of the Job are watched until one starts (pending reasons go to the
run's logs; a pod not started within ``pod_watch_timeout_seconds`` ends the run Crashed
and its Job is deleted), its logs are followed into the run's logs, and the Job is watched
until it completes, fails or is deleted. The watches resume through timeouts, 410 Gone and
API-server restarts (``watching``): only a Job that really ended settles the run. Kill:
the Job is deleted with foreground propagation. Jobs of a worker that died are found by
their labels and adopted or settled (``adoption``).
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import structlog
from pydantic import BaseModel
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from flowyard import schemas as s
from flowyard.blocks import KubernetesClusterConfig, render_job_configuration
from flowyard.errors import ApiError, FlowyardError
from flowyard.states import StateType
from flowyard.workers.base import BaseWorker, Infrastructure, OutputSink
from flowyard.workers.kubernetes import adoption, outcomes
from flowyard.workers.kubernetes.cluster import KubernetesError, connect, is_transient, read_json
from flowyard.workers.kubernetes.logs import follow_logs
from flowyard.workers.kubernetes.manifest import POOL, RunIdentity, build_manifest, label_value
from flowyard.workers.kubernetes.validation import check_manifest
from flowyard.workers.kubernetes.variables import (
    KubernetesVariables,
    SecretKeyRef,
    worker_api_key_secret,
)
from flowyard.workers.kubernetes.watching import follow

if TYPE_CHECKING:
    from flowyard.settings import Settings

log = structlog.get_logger()

LOG_DRAIN_SECONDS = 30.0
"""How long a finished run waits for the rest of its pod's logs."""

CREATE_RETRY: dict[str, Any] = {
    "stop": stop_after_attempt(4),
    "wait": wait_exponential(multiplier=0.5, max=4),
    "retry": retry_if_exception(is_transient),
    "reraise": True,
    "before_sleep": lambda state: log.warning(
        "job_create_retry", attempt=state.attempt_number, error=str(state.outcome.exception())
    ),
}
"""Creating a Job: a server restarting or overloaded is tried again, three more times."""


class JobInfrastructure(Infrastructure):
    """``id`` is ``namespace:name``; ``cluster`` names the API client it was created with."""

    namespace: str
    name: str
    run_id: str
    cluster: str = "default"


@dataclass
class _Watched:
    """What ``wait`` needs to know about a run beyond its Job."""

    output: OutputSink
    pod_timeout: float
    stream_output: bool


class KubernetesWorker(BaseWorker):
    type: ClassVar[str] = "kubernetes"
    variables: ClassVar[builtins.type[BaseModel]] = KubernetesVariables
    supports_kill: ClassVar[bool] = True
    kills_at_shutdown: ClassVar[bool] = False

    def __init__(
        self, *args: object, api_key_secret: SecretKeyRef | None = None, **kwargs: object
    ) -> None:
        """``api_key_secret``: where every Job reads the API key, unless its variables say."""
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.api_key_secret = api_key_secret
        self._warned_plain_key = False
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._watched: dict[str, _Watched] = {}
        self._adopting: dict[str, JobInfrastructure] = {}

    # -- launch / wait / kill ---------------------------------------------------------------

    def launch(
        self, claimed: s.ClaimedRun, configuration: BaseModel, output: OutputSink
    ) -> Infrastructure:
        assert isinstance(configuration, KubernetesVariables)
        watched = _Watched(
            output, configuration.pod_watch_timeout_seconds, configuration.stream_output
        )
        adopted = self._adopting.pop(claimed.run.id, None)
        if adopted is not None:
            self._watched[adopted.id] = watched
            return adopted
        try:
            env = self.engine_env(claimed)
            secret = configuration.api_key_secret or self.api_key_secret
            if secret is None and self.client.api_key:
                self._warn_plain_key()
            manifest = build_manifest(
                configuration, _identity(claimed, self), env, _suffix(), secret
            )
            check_manifest(manifest)
            cluster = self._cluster_key(configuration.cluster())
        except FlowyardError as exc:
            output("stderr", f"flowyard kubernetes worker: {exc}")
            raise
        metadata = manifest["metadata"]
        infrastructure = JobInfrastructure(
            id=f"{metadata['namespace']}:{metadata['name']}",
            namespace=metadata["namespace"],
            name=metadata["name"],
            run_id=claimed.run.id,
            cluster=cluster,
        )
        self._record_infrastructure(claimed, infrastructure)
        try:
            self._create(_batch_api(self._clients[cluster]), infrastructure, manifest)
        except KubernetesError as exc:
            output("stderr", f"flowyard kubernetes worker: {exc}")
            raise
        self._watched[infrastructure.id] = watched
        return infrastructure

    def wait(self, infrastructure: Infrastructure) -> int:
        assert isinstance(infrastructure, JobInfrastructure)
        watched = self._watched.pop(infrastructure.id)
        try:
            return self._wait(infrastructure, watched)
        except KubernetesError as exc:
            watched.output("stderr", f"flowyard kubernetes worker: {exc}")
            raise

    def kill(self, infrastructure: Infrastructure, grace_seconds: float) -> None:
        """Delete the Job, foreground: it is gone only once its pods are."""
        assert isinstance(infrastructure, JobInfrastructure)
        self._delete(infrastructure, "Foreground")

    # -- where Jobs read the API key --------------------------------------------------------

    @classmethod
    def options_from_settings(cls, settings: Settings) -> dict[str, Any]:
        """The Secret of ``FLOWYARD_WORKER_API_KEY_SECRET_NAME`` (and ``_KEY``), if named."""
        secret = worker_api_key_secret(settings)
        return {"api_key_secret": secret} if secret else {}

    def _warn_plain_key(self) -> None:
        """Once per worker: whoever may read these Jobs may read the key in their spec."""
        if not self._warned_plain_key:
            self._warned_plain_key = True
            self.log.warning(
                "api_key_in_pod_spec",
                hint="Jobs carry FLOWYARD_API_KEY as a plain value; put the key in a Secret "
                "in the Jobs' namespace and name it with FLOWYARD_WORKER_API_KEY_SECRET_NAME "
                "(and _KEY) or the job variable api_key_secret",
            )

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
        cluster = self._cluster_key(config.cluster())
        listing = read_json(
            _batch_api(self._clients[cluster]).list_namespaced_job,
            "list the pool's Jobs",
            config.namespace,
            label_selector=f"{POOL}={label_value(self.pool)}",
        )
        online = {w.name for w in self.client.list_workers(self.pool) if w.status == "ONLINE"}
        done: dict[str, adoption.Action] = {}
        for document in listing.get("items") or []:
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
        handle = JobInfrastructure(
            id=f"{job.namespace}:{job.name}",
            namespace=job.namespace,
            name=job.name,
            run_id=job.run_id,
            cluster=cluster,
        )
        if action is adoption.Action.CLEAN_UP:
            self._delete(handle, "Background")
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

    # -- the wait, step by step -------------------------------------------------------------

    def _wait(self, job: JobInfrastructure, watched: _Watched) -> int:
        client = self._clients[job.cluster]
        core, batch = _core_api(client), _batch_api(client)
        start = self._wait_for_pod(core, job, watched)
        if start is None:
            return -1
        readers = []
        if start.get("started") and watched.stream_output:
            readers.append(follow_logs(core, job.namespace, start["pod"], watched.output))
        end = follow(
            batch.list_namespaced_job,
            job.namespace,
            lambda jobs: outcomes.job_end(jobs, job.name),
            selector={"field_selector": f"metadata.name={job.name}"},
            what=f"job {job.name}",
        )
        pod = outcomes.newest(self._pods(core, job))
        code = outcomes.exit_code(pod)
        for reader in readers:
            reader.join(LOG_DRAIN_SECONDS)
        if end is not None and end.kind != "complete":
            self._settle_run(job.run_id, _crash_message(end, code))
        return -1 if code is None else code

    def _wait_for_pod(
        self, core: Any, job: JobInfrastructure, watched: _Watched
    ) -> dict[str, Any] | None:
        """The pod that started (or was deleted first); None when none started in time."""
        seen: set[str] = set()
        told: set[str] = set()
        last: list[str] = []

        def decide(pods: dict[str, Any]) -> dict[str, Any] | None:
            verdict = outcomes.pod_start(pods, seen)
            if verdict is not None:
                return {"pod": pods.get(verdict.pod), "started": verdict.started}
            last[:] = outcomes.pending_reasons(outcomes.newest(pods))
            for reason in last:
                if reason not in told:
                    told.add(reason)
                    watched.output("stderr", f"pod pending: {reason}")
            return None

        start = follow(
            core.list_namespaced_pod,
            job.namespace,
            decide,
            selector={"label_selector": f"job-name={job.name}"},
            deadline=time.monotonic() + watched.pod_timeout,
            what=f"pods of {job.name}",
        )
        if start is not None:
            return start
        why = "; ".join(last) or "no reason reported"
        message = f"the pod did not start within {watched.pod_timeout:g}s ({why})"
        watched.output("stderr", f"flowyard kubernetes worker: {message}; deleting the Job")
        self._delete(job, "Background")
        self._settle_run(job.run_id, message)
        return None

    # -- pieces -----------------------------------------------------------------------------

    def _create(self, batch: Any, job: JobInfrastructure, manifest: dict[str, Any]) -> None:
        """Create the Job; a transient failure is tried again, an AlreadyExists then is ours."""
        for attempt in Retrying(**CREATE_RETRY):
            with attempt:
                try:
                    read_json(
                        batch.create_namespaced_job, "create the Job", job.namespace, manifest
                    )
                except KubernetesError as exc:
                    if exc.status == 409 and attempt.retry_state.attempt_number > 1:
                        return
                    raise

    def _delete(self, job: JobInfrastructure, propagation: str) -> None:
        batch = _batch_api(self._clients[job.cluster])
        try:
            read_json(
                batch.delete_namespaced_job,
                "delete the Job",
                job.name,
                job.namespace,
                propagation_policy=propagation,
            )
        except KubernetesError as exc:
            if exc.status != 404:
                raise

    def _pods(self, core: Any, job: JobInfrastructure) -> dict[str, Any]:
        listing = read_json(
            core.list_namespaced_pod,
            "list pods",
            job.namespace,
            label_selector=f"job-name={job.name}",
        )
        return {p["metadata"]["name"]: p for p in listing.get("items") or []}

    def _settle_run(self, run_id: str, message: str) -> None:
        """Settle now with this message (Crashed, or Cancelled if a cancel was asked for)."""
        active = self._active.get(run_id)
        if active is not None:
            self._settle(active, message)

    def _cluster_key(self, config: KubernetesClusterConfig | None) -> str:
        """A name for the client of ``config``, connecting on first use."""
        key = "default"
        if config is not None:
            digest = hashlib.sha256(config.model_dump_json().encode())
            if config.kubeconfig is not None:
                digest.update(config.kubeconfig.get_secret_value().encode())
            key = digest.hexdigest()[:16]
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = connect(config)
        return key

    def shutdown(self) -> None:
        try:
            super().shutdown()
        finally:
            for client in self._clients.values():
                client.close()


def _identity(claimed: s.ClaimedRun, worker: BaseWorker) -> RunIdentity:
    run, deployment = claimed.run, claimed.deployment
    return RunIdentity(
        run_id=run.id,
        run_name=run.name,
        flow_name=run.flow_name,
        pool=worker.pool,
        worker=worker.name,
        deployment_id=deployment.id if deployment else None,
        deployment_name=deployment.name if deployment else None,
    )


def _crash_message(end: outcomes.JobEnd, code: int | None) -> str:
    exited = "" if code is None else f", the flow's container exited with code {code}"
    if end.kind == "gone":
        return f"the Job was deleted before the flow run ended{exited}"
    return f"the Job failed ({end.reason}){exited}, without a final state from the engine"


def _suffix() -> str:
    """Five random characters: a run claimed again gets a Job of its own."""
    return secrets.token_hex(3)[:5]


def _batch_api(client: Any) -> Any:
    from kubernetes.client import BatchV1Api

    return BatchV1Api(client)


def _core_api(client: Any) -> Any:
    from kubernetes.client import CoreV1Api

    return CoreV1Api(client)
