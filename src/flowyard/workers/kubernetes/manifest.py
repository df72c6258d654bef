"""The Job manifest of a flow run, built in small pure steps (no I/O).

``build_manifest`` chains them: the default manifest from the job variables (or a copy of
a custom ``job_manifest``), then the Job's name and namespace, Flowyard's labels, and the
engine (command and environment) in the first container. ``FLOWYARD_API_KEY`` there is the
run's own token (``BaseWorker.engine_env``) as a plain value, never the worker's key: it
acts for that one run only and is read-only once the run is final, and the copy in the
spec expires soon (the engine renews its own through heartbeats), so whoever may read the
Job learns little. ``validation.check_manifest`` then checks the result before anything is
sent to the API server.
"""

from __future__ import annotations

import copy
import re
import secrets
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowyard.workers.kubernetes.variables import KubernetesVariables

if TYPE_CHECKING:
    from flowyard import schemas as s

LABEL = "flowyard.io"
"""Prefix of the labels and annotations on every Job (and pod) a worker creates."""

RUN_ID, POOL, WORKER = f"{LABEL}/flow-run-id", f"{LABEL}/pool", f"{LABEL}/worker"
CONTAINER = "flowyard"
"""Name of the flow's container in the default manifest."""


@dataclass(frozen=True)
class RunIdentity:
    """What the manifest needs to know about the run, the deployment and the worker."""

    run_id: str
    run_name: str
    flow_name: str
    pool: str
    worker: str
    deployment_id: str | None = None
    deployment_name: str | None = None


def run_identity(claimed: s.ClaimedRun, pool: str, worker: str) -> RunIdentity:
    """The identity of a run claimed by ``worker`` of ``pool``."""
    run, deployment = claimed.run, claimed.deployment
    return RunIdentity(
        run_id=run.id,
        run_name=run.name,
        flow_name=run.flow_name,
        pool=pool,
        worker=worker,
        deployment_id=deployment.id if deployment else None,
        deployment_name=deployment.name if deployment else None,
    )


def job_suffix() -> str:
    """Five random characters: a run claimed again gets a Job of its own."""
    return secrets.token_hex(3)[:5]


def build_manifest(
    variables: KubernetesVariables,
    identity: RunIdentity,
    engine_env: dict[str, str],
    suffix: str,
) -> dict[str, Any]:
    """The Job to create for one run; ``suffix`` makes the name unique per launch."""
    manifest = base_manifest(variables)
    manifest = with_identity(manifest, job_name(identity, suffix), variables.namespace)
    manifest = with_labels(manifest, flowyard_labels(identity), flowyard_annotations(identity))
    return with_engine(manifest, identity.run_id, engine_env)


def base_manifest(variables: KubernetesVariables) -> dict[str, Any]:
    """A copy of the custom ``job_manifest``, or the default Job built from the variables."""
    if variables.job_manifest is not None:
        return copy.deepcopy(variables.job_manifest)
    v = variables
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": v.image,
        "imagePullPolicy": v.image_pull_policy,
        "env": [{"name": k, "value": val} for k, val in v.env.items()],
    }
    if v.command:
        container["command"] = shlex.split(v.command)
    resources = _resources(v)
    if resources:
        container["resources"] = resources
    if v.volume_mounts:
        container["volumeMounts"] = copy.deepcopy(v.volume_mounts)
    if v.security_context:
        container["securityContext"] = copy.deepcopy(v.security_context)
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    optional_pod = {
        "serviceAccountName": v.service_account_name,
        "nodeSelector": dict(v.node_selector),
        "tolerations": copy.deepcopy(v.tolerations),
        "imagePullSecrets": [{"name": name} for name in v.image_pull_secrets],
        "volumes": copy.deepcopy(v.volumes),
    }
    pod.update({k: val for k, val in optional_pod.items() if val})
    spec: dict[str, Any] = {
        "backoffLimit": v.backoff_limit,
        "template": {"metadata": {"labels": dict(v.labels)}, "spec": pod},
    }
    if v.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = v.ttl_seconds_after_finished
    if v.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = v.active_deadline_seconds
    metadata = {"labels": dict(v.labels), "annotations": dict(v.annotations)}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}


def with_identity(manifest: dict[str, Any], name: str, namespace: str) -> dict[str, Any]:
    """Set the Job's name (ours, always) and namespace (the manifest's own, if it has one)."""
    result = copy.deepcopy(manifest)
    metadata = result.setdefault("metadata", {})
    metadata.pop("generateName", None)
    metadata["name"] = name
    metadata.setdefault("namespace", namespace)
    return result


def with_labels(
    manifest: dict[str, Any], labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    """Flowyard's labels and annotations on the Job and on its pod template."""
    result = copy.deepcopy(manifest)
    template = result.setdefault("spec", {}).setdefault("template", {})
    for metadata in (result.setdefault("metadata", {}), template.setdefault("metadata", {})):
        metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
        metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    return result


def with_engine(
    manifest: dict[str, Any], run_id: str, engine_env: dict[str, str]
) -> dict[str, Any]:
    """The engine's environment (and default command) in the flow's container.

    The flow's container is the one named ``flowyard``, else the first one. The engine's
    variables replace any of the same name. A restart policy is required of a Job's pod;
    ``Never`` keeps one attempt per pod, as Flowyard does its own retries.
    """
    result = copy.deepcopy(manifest)
    pod = result.setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
    pod.setdefault("restartPolicy", "Never")
    containers = pod.setdefault("containers", [])
    if not containers:
        containers.append({"name": CONTAINER})
    container = next((c for c in containers if c.get("name") == CONTAINER), containers[0])
    container.setdefault("command", ["python", "-m", "flowyard.engine", run_id])
    kept = [e for e in container.get("env") or [] if e.get("name") not in engine_env]
    container["env"] = kept + [{"name": k, "value": v} for k, v in engine_env.items()]
    return result


def flowyard_labels(identity: RunIdentity) -> dict[str, str]:
    """Labels to find a run's Job by (label values: 63 characters, a restricted alphabet)."""
    labels = {
        RUN_ID: identity.run_id,
        POOL: label_value(identity.pool),
        WORKER: label_value(identity.worker),
        f"{LABEL}/flow-name": label_value(identity.flow_name),
        f"{LABEL}/flow-run-name": label_value(identity.run_name),
    }
    if identity.deployment_id:
        labels[f"{LABEL}/deployment-id"] = identity.deployment_id
    return labels


def flowyard_annotations(identity: RunIdentity) -> dict[str, str]:
    """The names in full (labels may have had to shorten or change them)."""
    annotations = {
        f"{LABEL}/pool": identity.pool,
        f"{LABEL}/worker": identity.worker,
        f"{LABEL}/flow-name": identity.flow_name,
        f"{LABEL}/flow-run-name": identity.run_name,
    }
    if identity.deployment_name:
        annotations[f"{LABEL}/deployment-name"] = identity.deployment_name
    return annotations


def job_name(identity: RunIdentity, suffix: str) -> str:
    """``fy-<flow>-<run id prefix>-<suffix>``: a DNS-1123 label of at most 63 characters."""
    tail = f"-{identity.run_id[:8]}-{suffix}".lower()
    flow = _dns(identity.flow_name)[: 63 - len("fy-") - len(tail)].strip("-")
    return f"fy-{flow}{tail}" if flow else f"fy{tail}"


def label_value(text: str) -> str:
    """``text`` as a valid label value: allowed characters, alphanumeric ends, <= 63."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def _dns(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")


def _resources(v: KubernetesVariables) -> dict[str, dict[str, str]]:
    requests = {"cpu": v.cpu_request, "memory": v.memory_request}
    limits = {"cpu": v.cpu_limit, "memory": v.memory_limit}
    resources = {
        "requests": {k: q for k, q in requests.items() if q},
        "limits": {k: q for k, q in limits.items() if q},
    }
    return {k: val for k, val in resources.items() if val}
