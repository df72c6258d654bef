"""Job variables of a kubernetes pool: the schema of its base job template.

Quantities and names carry patterns, so a bad value is refused when a deployment is
created (the pool's JSON schema) and again, with the field named, when a run is launched.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from flowyard.blocks import KubernetesClusterConfig
from flowyard.errors import InvalidInput

QUANTITY = r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?\d+))?$"
"""A Kubernetes resource quantity: ``500m``, ``1``, ``0.5``, ``512Mi``, ``2G``."""

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
"""A key of a Secret's data (a ``secretKeyRef`` of a custom ``job_manifest``)."""
BLOCK_REFERENCE = r"^\{\{\s*block\.kubernetes-cluster-config/[A-Za-z0-9][A-Za-z0-9_\-]*\s*\}\}$"
"""What a deployment may give for ``cluster_config``; the worker resolves it at launch."""


RESTRICTED: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
"""The flow container's default securityContext: what Pod Security "restricted" asks
(the image must then run as a non-root user, as Flowyard's does: uid 10001)."""


def _quantity(description: str) -> Any:
    return Field(default=None, pattern=QUANTITY, description=description)


class KubernetesVariables(BaseModel):
    """Job variables of a kubernetes pool (its base job template's schema)."""

    image: str = Field(default="flowyard:latest", description="Image the flow runs in.")
    command: str | None = Field(
        default=None, description="Command; default: the Flowyard engine for the run."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment variables.")
    namespace: str = Field(
        default="default", max_length=63, pattern=DNS_LABEL, description="Namespace of the Job."
    )
    service_account_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN, description="The pod's account."
    )
    image_pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(
        default="IfNotPresent", description="When the kubelet pulls the image."
    )
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="Names of Secrets to pull private images with."
    )
    cpu_request: str | None = _quantity("CPU request, e.g. '500m'.")
    cpu_limit: str | None = _quantity("CPU limit, e.g. '2'.")
    memory_request: str | None = _quantity("Memory request, e.g. '256Mi'.")
    memory_limit: str | None = _quantity("Memory limit, e.g. '1Gi'.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra Job and pod labels.")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Extra Job and pod annotations."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels the pod must run on."
    )
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list, description="Pod tolerations, as in a pod spec."
    )
    volumes: list[dict[str, Any]] = Field(
        default_factory=list, description="Pod volumes, as in a pod spec."
    )
    volume_mounts: list[dict[str, Any]] = Field(
        default_factory=list, description="Volume mounts of the flow's container."
    )
    security_context: dict[str, Any] = Field(
        default=RESTRICTED,  # pydantic copies it for each instance
        description="The flow container's securityContext, as in a pod spec; default: what "
        'Pod Security "restricted" asks (non-root, no privilege escalation, every '
        "capability dropped, seccomp RuntimeDefault); {} for none.",
    )
    backoff_limit: int = Field(
        default=0, ge=0, description="Pod retries by Kubernetes; 0: Flowyard retries flows."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=3600, ge=0, description="Kubernetes deletes the finished Job after this."
    )
    active_deadline_seconds: int | None = Field(
        default=None, gt=0, description="Kubernetes kills the Job after this many seconds."
    )
    pod_watch_timeout_seconds: float = Field(
        default=300, gt=0, description="A pod not started by then: the run is Crashed."
    )
    stream_output: bool = Field(default=True, description="Send the pod's logs to the run's logs.")
    cluster_config: (
        KubernetesClusterConfig | Annotated[str, Field(pattern=BLOCK_REFERENCE)] | None
    ) = Field(
        default=None,
        description="A kubernetes-cluster-config block; default: KUBECONFIG, "
        "~/.kube/config, or the in-cluster account.",
    )
    job_manifest: dict[str, Any] | None = Field(
        default=None,
        description="A complete batch/v1 Job manifest replacing the default one; the worker "
        "adds its name, labels and the engine's environment.",
    )

    def cluster(self) -> KubernetesClusterConfig | None:
        """The resolved cluster block (a reference left unresolved is an error)."""
        if isinstance(self.cluster_config, str):
            raise InvalidInput(f"cluster_config {self.cluster_config!r} was not resolved")
        return self.cluster_config
