"""The pod's service account as the worker's credentials, with a token that rotates.

Kubernetes mounts a bound service-account token into every pod (``token``, ``ca.crt``
under ``SERVICE_ACCOUNT``) and the kubelet rewrites it before it expires: a bound token
lasts an hour by default and is refused once expired. The official client's in-cluster
loader reads the file again at most once a minute, so a worker could send a token the
API server already refuses. Here the file is looked at (``stat``) before every request
and read again whenever it changed: the kubelet swaps the projected volume's contents
through a symlink, which changes the file's inode and modification time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowyard.errors import KubernetesError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where Kubernetes mounts a pod's service-account token and the cluster's CA."""


class TokenFile:
    """A token file, read again when it changes (by inode, modification time and size)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._token = ""
        self._lock = threading.Lock()
        if not self.current():
            raise KubernetesError(f"the service-account token file {path} is empty")

    def current(self) -> str:
        """The token in the file now; the last one read while the file is being swapped."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._seen is None:
                raise KubernetesError(f"no service-account token at {self.path}") from None
            return self._token
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if seen != self._seen:
                token = self.path.read_text().strip()
                if token:
                    self._token, self._seen = token, seen
            return self._token


def load_in_cluster(
    configuration: Any,
    folder: Path = SERVICE_ACCOUNT,
    environ: Mapping[str, str] = os.environ,
) -> None:
    """Point ``configuration`` at the cluster's API server as the pod's service account,
    with the current token on every request."""
    host = environ.get("KUBERNETES_SERVICE_HOST")
    port = environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise KubernetesError(
            "not running in a Kubernetes pod: KUBERNETES_SERVICE_HOST/PORT are not set"
        )
    ca = folder / "ca.crt"
    if not ca.is_file() or not ca.stat().st_size:
        raise KubernetesError(f"no cluster CA certificate at {ca}")
    token = TokenFile(folder / "token")
    configuration.host = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    configuration.ssl_ca_cert = str(ca)

    def refresh(config: Any) -> None:  # called by the client before each request
        config.api_key["BearerToken"] = f"Bearer {token.current()}"

    refresh(configuration)
    configuration.refresh_api_key_hook = refresh
