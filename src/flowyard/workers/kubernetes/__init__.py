"""The Kubernetes Job worker: each flow run a ``batch/v1`` Job (``docs/kubernetes-worker.md``).

Importing this package does not import the ``kubernetes`` client; connecting does.
"""

from flowyard.workers.kubernetes.jobs import JobInfrastructure
from flowyard.workers.kubernetes.validation import ManifestError, check_manifest
from flowyard.workers.kubernetes.variables import KubernetesVariables
from flowyard.workers.kubernetes.worker import KubernetesWorker

__all__ = [
    "JobInfrastructure",
    "KubernetesVariables",
    "KubernetesWorker",
    "ManifestError",
    "check_manifest",
]
