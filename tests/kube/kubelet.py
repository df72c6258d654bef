"""The emulated Job controller and kubelet: each Job's pods really run, on a ``Runtime``.

A Job gets a pod (``<job>-<random>``, labelled ``job-name``); the pod is scheduled when its
nodeSelector matches the node's labels (else Pending, ``Unschedulable``), its image must
exist (else Pending, ``ErrImagePull`` then ``ImagePullBackOff``, forever), the Secrets its
variables name must exist (else Pending, ``CreateContainerConfigError``, until they do), then
its first container runs and its exit code decides: Complete, another pod (``backoffLimit``), or
Failed (``BackoffLimitExceeded``). ``activeDeadlineSeconds`` and ``ttlSecondsAfterFinished``
are honoured. Deleting a Job deletes its pods per the propagation policy; a pod's
deletion stops its container with the pod's ``terminationGracePeriodSeconds``.

Admission (``admission.Admission``) may refuse a pod: it is not created, the Job gets a
``FailedCreate`` Warning Event, and the creation is tried again with a backoff until
admitted (a ResourceQuota freed) or the Job is deleted, as by the real Job controller. On request a
running pod is OOM-killed (``oom_kill``: its container ends ``OOMKilled``, exit 137) or
evicted (``evict``: the pod ends Failed with reason ``Evicted``), both with SIGKILL.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.kube.admission import Admission
from tests.kube.runtimes import Runtime
from tests.kube.secrets import ContainerConfigError, resolve_env
from tests.kube.store import Obj, Store, now_rfc3339

NODE_LABELS = {"kubernetes.io/os": "linux", "kubernetes.io/hostname": "emulator"}
CREATE_BACKOFF_SECONDS = 0.1
"""The Job controller's first wait before creating a refused pod again (doubling to 1 s)."""
UNSCHEDULABLE = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."


@dataclass
class PodLog:
    """A pod's output with timestamps; ``done`` once its container ended."""

    lines: list[tuple[str, str]] = field(default_factory=list)
    done: bool = False
    changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, text: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
        with self.changed:
            self.lines.append((stamp, text))
            self.changed.notify_all()

    def read(self, after: int, timeout: float) -> tuple[list[tuple[str, str]], bool]:
        """Lines after the first ``after`` (waiting up to ``timeout`` for some), and ``done``."""
        with self.changed:
            self.changed.wait_for(lambda: len(self.lines) > after or self.done, timeout)
            return self.lines[after:], self.done

    def finish(self) -> None:
        with self.changed:
            self.done = True
            self.changed.notify_all()


@dataclass
class _Pod:
    deleted: threading.Event = field(default_factory=threading.Event)
    handle: Any = None
    log: PodLog = field(default_factory=PodLog)
    ending: tuple[Obj, tuple[str, str] | None] | None = None  # terminated, pod (reason, message)


class Kubelet:
    def __init__(self, store: Store, runtime: Runtime) -> None:
        self.store = store
        self.runtime = runtime
        self.deletions: list[tuple[str, str, str]] = []  # namespace, name, policy
        self.admission = Admission()
        self.root_images: set[str] = set()  # images whose user is root (others: non-root)
        self._pods: dict[tuple[str, str], _Pod] = {}
        self._lock = threading.Lock()

    def job_created(self, job: Obj) -> None:
        ns, name = job["metadata"]["namespace"], job["metadata"]["name"]
        threading.Thread(target=self._run_job, args=(ns, name), daemon=True).start()
        deadline = job["spec"].get("activeDeadlineSeconds")
        if deadline:
            timer = threading.Timer(deadline, self._deadline_exceeded, args=(ns, name))
            timer.daemon = True
            timer.start()

    def pod_log(self, namespace: str, pod: str) -> PodLog | None:
        with self._lock:
            found = self._pods.get((namespace, pod))
        return found.log if found else None

    def delete_job(self, namespace: str, name: str, policy: str) -> Obj | None:
        self.deletions.append((namespace, name, policy))
        if policy == "Foreground":

            def mark(job: Obj) -> None:
                job["metadata"]["deletionTimestamp"] = now_rfc3339()
                job["metadata"]["finalizers"] = ["foregroundDeletion"]

            job = self.store.update("jobs", namespace, name, mark)
            if job is not None:
                threading.Thread(
                    target=self._delete_pods, args=(namespace, name, True), daemon=True
                ).start()
            return job
        job = self.store.delete("jobs", namespace, name)
        if job is not None and policy == "Background":
            threading.Thread(
                target=self._delete_pods, args=(namespace, name, False), daemon=True
            ).start()
        return job

    def oom_kill(self, namespace: str, pod: str) -> None:
        """The flow's container goes over its memory limit: the kernel kills it."""
        self._end_pod(namespace, pod, {"exitCode": 137, "reason": "OOMKilled"}, None)

    def evict(self, namespace: str, pod: str, message: str) -> None:
        """The node runs short (a hard eviction, no grace): the pod ends Failed, Evicted."""
        self._end_pod(namespace, pod, {"exitCode": 137, "reason": "Error"}, ("Evicted", message))

    def _end_pod(
        self, namespace: str, pod: str, terminated: Obj, reason: tuple[str, str] | None
    ) -> None:
        with self._lock:
            state = self._pods[(namespace, pod)]
        state.ending = (terminated, reason)
        self.runtime.kill(state.handle)

    def stop_all(self) -> None:
        with self._lock:
            pods = list(self._pods.values())
        for pod in pods:
            pod.deleted.set()
            if pod.handle is not None:
                self.runtime.stop(pod.handle, 1)

    # -- the Job controller ------------------------------------------------------------------

    def _run_job(self, ns: str, name: str) -> None:
        failures = 0
        while True:
            job = self.store.get("jobs", ns, name)
            if job is None or "deletionTimestamp" in job["metadata"] or _finished(job):
                return
            code = self._run_pod(ns, job)
            if code is None:
                return
            if code == 0:
                self._job_ended(ns, name, "Complete", "", "", succeeded=1)
                return
            failures += 1
            if failures > job["spec"].get("backoffLimit", 6):
                message = "Job has reached the specified backoff limit"
                reason = "BackoffLimitExceeded"
                self._job_ended(ns, name, "Failed", reason, message, failed=failures)
                return

    def _job_ended(
        self, ns: str, name: str, kind: str, reason: str, message: str, **counts: int
    ) -> None:
        def finish(job: Obj) -> None:
            status = job.setdefault("status", {})
            status.update(counts, active=0)
            condition = {"type": kind, "status": "True", "lastTransitionTime": now_rfc3339()}
            if reason:
                condition.update(reason=reason, message=message)
            status["conditions"] = [*status.get("conditions", []), condition]
            if kind == "Complete":
                status["completionTime"] = now_rfc3339()

        job = self.store.update("jobs", ns, name, finish)
        ttl = job["spec"].get("ttlSecondsAfterFinished") if job else None
        if ttl is not None:
            timer = threading.Timer(ttl, self.delete_job, args=(ns, name, "Background"))
            timer.daemon = True
            timer.start()

    def _deadline_exceeded(self, ns: str, name: str) -> None:
        job = self.store.get("jobs", ns, name)
        if job is None or _finished(job):
            return
        message = "Job was active longer than specified deadline"
        self._job_ended(ns, name, "Failed", "DeadlineExceeded", message, failed=1)
        self._delete_pods(ns, name, False)

    def _delete_pods(self, ns: str, job: str, then_job: bool) -> None:
        pods, _ = self.store.list("pods", ns, {"job-name": job}, {})
        for pod in pods:
            self._delete_pod(ns, pod)
        if then_job:
            self.store.delete("jobs", ns, job)

    def _delete_pod(self, ns: str, pod: Obj) -> None:
        name = pod["metadata"]["name"]
        with self._lock:
            state = self._pods.get((ns, name))
        self.store.update("pods", ns, name, _mark_deleting)
        if state is not None:
            state.deleted.set()
            if state.handle is not None:
                grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
                self.runtime.stop(state.handle, grace)
        self.store.delete("pods", ns, name)

    # -- the kubelet -------------------------------------------------------------------------

    def _run_pod(self, ns: str, job: Obj) -> int | None:
        """Run one pod of ``job``; its container's exit code, None if deleted first (or
        refused by admission)."""
        job_name = job["metadata"]["name"]
        pod_name = f"{job_name}-{secrets.token_hex(3)[:5]}"
        if not self._admitted(ns, job_name, pod_name, job["spec"]["template"]["spec"]):
            return None
        pod, state = self._create_pod(ns, job, pod_name)
        name, spec = pod["metadata"]["name"], pod["spec"]
        selector = spec.get("nodeSelector") or {}
        if any(NODE_LABELS.get(k) != v for k, v in selector.items()):
            self._set_status(ns, name, "Pending", scheduled=("Unschedulable", UNSCHEDULABLE))
            state.deleted.wait()
            return None
        container = spec["containers"][0]
        waiting = {"reason": "ContainerCreating"}
        self._set_status(ns, name, "Pending", waiting=waiting)
        if not self._pull(ns, name, container["image"], state):
            return None
        if self._root_refused(ns, name, spec, container):
            state.deleted.wait()
            return None
        container = self._configure(ns, name, container, state)
        if container is None:
            return None
        try:
            state.handle = self.runtime.start(name, container, spec.get("volumes") or [])
        except Exception as exc:
            terminated = {"exitCode": 128, "reason": "StartError", "message": str(exc)[:200]}
            self._set_status(ns, name, "Failed", terminated=terminated)
            return None if state.deleted.is_set() else 128
        if state.deleted.is_set():
            self.runtime.stop(state.handle, 1)
            return None
        self._set_status(ns, name, "Running", running={"startedAt": now_rfc3339()})
        self.store.update("jobs", ns, job["metadata"]["name"], _mark_active)
        pump = threading.Thread(target=self._pump, args=(state,), daemon=True)
        pump.start()
        code = self.runtime.wait(state.handle)
        pump.join(30)
        state.log.finish()
        if state.ending is not None:
            terminated, reason = state.ending
            self._set_status(ns, name, "Failed", pod_reason=reason, terminated=terminated)
            return int(terminated["exitCode"])
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        self._set_status(ns, name, "Succeeded" if code == 0 else "Failed", terminated=terminated)
        return None if state.deleted.is_set() else code

    def _admitted(self, ns: str, job: str, pod: str, spec: Obj) -> bool:
        """Create the pod through admission as the Job controller does: each refusal is a
        ``FailedCreate`` Event, and the creation is tried again with a backoff (a used-up
        quota frees as other pods end) until admitted or the Job is deleted."""
        backoff = CREATE_BACKOFF_SECONDS
        while True:
            refusal = self.admission.refusal(ns, pod, spec, self._pods_not_ended(ns))
            if refusal is None:
                return True
            self._failed_create(ns, job, refusal)
            live = self.store.get("jobs", ns, job)
            if live is None or "deletionTimestamp" in live["metadata"]:
                return False
            threading.Event().wait(backoff)  # noqa: TID251 - the Job controller's backoff
            backoff = min(backoff * 2, 1.0)

    def _pods_not_ended(self, ns: str) -> list[Obj]:
        pods, _ = self.store.list("pods", ns, {}, {})
        ended = ("Succeeded", "Failed")
        return [p["spec"] for p in pods if (p.get("status") or {}).get("phase") not in ended]

    def _failed_create(self, ns: str, job: str, refusal: str) -> None:
        """The Job controller's Event when admission refused the Job's pod."""
        about = {"apiVersion": "batch/v1", "kind": "Job", "name": job, "namespace": ns}
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{job}.{secrets.token_hex(8)}", "namespace": ns},
            "involvedObject": about,
            "type": "Warning",
            "reason": "FailedCreate",
            "message": f"Error creating: {refusal}",
            "source": {"component": "job-controller"},
            "count": 1,
            "lastTimestamp": now_rfc3339(),
        }
        self.store.create("events", event)

    def _create_pod(self, ns: str, job: Obj, name: str) -> tuple[Obj, _Pod]:
        template, job_name = job["spec"]["template"], job["metadata"]["name"]
        labels = {**(template.get("metadata", {}).get("labels") or {}), "job-name": job_name}
        labels["batch.kubernetes.io/job-name"] = job_name
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job_name}
        metadata = {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [owner]}
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}
        pod["status"] = {"phase": "Pending"}
        state = _Pod()
        with self._lock:
            self._pods[(ns, name)] = state
        return self.store.create("pods", pod), state

    def _pull(self, ns: str, name: str, image: str, state: _Pod) -> bool:
        """True when the image is there; otherwise report pull errors until deleted."""
        if self.runtime.image_exists(image):
            return True
        pulled = f'failed to pull and unpack image "{image}": not found'
        reasons = [
            ("ErrImagePull", f'Failed to pull image "{image}": {pulled}'),
            ("ImagePullBackOff", f'Back-off pulling image "{image}"'),
        ]
        turn = 0
        while not state.deleted.is_set():
            reason, message = reasons[turn % 2]
            self._set_status(ns, name, "Pending", waiting={"reason": reason, "message": message})
            turn += 1
            state.deleted.wait(1.0)
        return False

    def _root_refused(self, ns: str, name: str, spec: Obj, container: Obj) -> bool:
        """A ``runAsNonRoot`` container whose image runs as root (and no ``runAsUser`` says
        otherwise): the kubelet refuses to start it, and keeps the pod Pending."""
        pod_context, context = (
            spec.get("securityContext") or {},
            container.get("securityContext") or {},
        )
        merged = {**pod_context, **context}
        if not merged.get("runAsNonRoot") or container["image"] not in self.root_images:
            return False
        if merged.get("runAsUser"):
            return False
        message = (
            f'container has runAsNonRoot and image will run as root (pod: "{name}_{ns}", '
            f"container: {container['name']})"
        )
        waiting = {"reason": "CreateContainerConfigError", "message": message}
        self._set_status(ns, name, "Pending", waiting=waiting)
        return True

    def _configure(self, ns: str, name: str, container: Obj, state: _Pod) -> Obj | None:
        """The container with its Secret references read; until they can be, the pod stays
        Pending (``CreateContainerConfigError``) and the kubelet tries again, unless deleted."""
        told = None
        while not state.deleted.is_set():
            try:
                env = resolve_env(
                    container.get("env") or [], ns, lambda s: self.store.get("secrets", ns, s)
                )
                return {**container, "env": env}
            except ContainerConfigError as exc:
                if str(exc) != told:
                    told = str(exc)
                    waiting = {"reason": "CreateContainerConfigError", "message": told}
                    self._set_status(ns, name, "Pending", waiting=waiting)
            state.deleted.wait(1.0)
        return None

    def _pump(self, state: _Pod) -> None:
        try:
            for line in self.runtime.output(state.handle):
                state.log.add(line)
        except Exception:  # the container was removed: its output ends
            return

    def _set_status(
        self,
        ns: str,
        name: str,
        phase: str,
        scheduled: tuple[str, str] | None = None,
        pod_reason: tuple[str, str] | None = None,
        **container_state: Obj,
    ) -> None:
        def apply(pod: Obj) -> None:
            condition = {"type": "PodScheduled", "status": "True"}
            if scheduled:
                condition = {**condition, "status": "False"}
                condition.update(reason=scheduled[0], message=scheduled[1])
            status: Obj = {"phase": phase, "conditions": [condition]}
            if pod_reason:
                status.update(reason=pod_reason[0], message=pod_reason[1])
            if container_state:
                first = pod["spec"]["containers"][0]
                status["containerStatuses"] = [
                    {"name": first["name"], "image": first["image"], "state": container_state}
                ]
            pod["status"] = status

        self.store.update("pods", ns, name, apply)


def _finished(job: Obj) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)


def _mark_deleting(pod: Obj) -> None:
    pod["metadata"]["deletionTimestamp"] = now_rfc3339()


def _mark_active(job: Obj) -> None:
    job.setdefault("status", {}).update(active=1, startTime=now_rfc3339())
