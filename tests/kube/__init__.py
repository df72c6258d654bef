"""An emulated Kubernetes API server for the Job worker's tests (``server.KubeApiServer``)."""

from tests.kube.runtimes import DockerRuntime, ProcessRuntime
from tests.kube.server import KUBE_VERSION, KubeApiServer

__all__ = ["KUBE_VERSION", "DockerRuntime", "KubeApiServer", "ProcessRuntime"]
