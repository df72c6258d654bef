"""The boundary with the API server: connecting, raw JSON calls, and translated errors.

A worker keeps one API client per cluster its runs name (``ClusterClients``), connected
on first use and closed when the worker shuts down.

The ``kubernetes`` package is imported here, lazily: it costs a noticeable fraction of a
second, which a worker of another type (or the engine) should not pay. Calls go through
the official client with ``_preload_content=False`` and JSON is read as plain dicts: the
worker needs a few fields, not the client's models.

``is_transient`` is the one predicate that decides what is retried: connection failures,
timeouts, 429 and 5xx answers. A 410 Gone is not an error at all for a watch: it means
"list again" (``is_gone``).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowyard.blocks import KubernetesClusterConfig
from flowyard.errors import KubernetesError
from flowyard.workers.kubernetes.in_cluster import SERVICE_ACCOUNT, load_in_cluster

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

TRANSIENT_STATUS = frozenset({0, 408, 429, 500, 502, 503, 504})
POOL_SIZE = 128
"""Connections kept per API server: each watched run holds one or two open streams."""


def connect(
    config: KubernetesClusterConfig | None, service_account: Path = SERVICE_ACCOUNT
) -> ApiClient:
    """An API client for the block's cluster, or the default chain.

    The default chain is the client's: ``KUBECONFIG`` or ``~/.kube/config``, then the
    in-cluster service account (``in_cluster``: its token read again when it rotates).
    """
    from kubernetes import client
    from kubernetes import config as kube_config

    configuration = client.Configuration()
    try:
        if config is not None and config.in_cluster:
            load_in_cluster(configuration, service_account)
        elif config is not None and config.kubeconfig is not None:
            import yaml

            document = yaml.safe_load(config.kubeconfig.get_secret_value())
            kube_config.load_kube_config_from_dict(
                document, context=config.context, client_configuration=configuration
            )
        else:
            _default_chain(configuration, config.context if config else None, service_account)
    except (kube_config.ConfigException, OSError, ValueError) as exc:
        raise KubernetesError(f"cannot configure the Kubernetes client: {exc}") from exc
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


class ClusterClients:
    """A worker's API clients, one per cluster configuration, by a key naming each."""

    def __init__(self) -> None:
        self._clients: dict[str, ApiClient] = {}
        self._lock = threading.Lock()

    def key(self, config: KubernetesClusterConfig | None) -> str:
        """A name for the client of ``config``, connecting on first use."""
        key = "default"
        if config is not None:
            digest = hashlib.sha256(config.model_dump_json().encode())
            if config.kubeconfig is not None:
                digest.update(config.kubeconfig.get_secret_value().encode())
            key = digest.hexdigest()[:16]
        with self._lock:
            if key not in self._clients:
                self._clients[key] = connect(config)
        return key

    def batch(self, key: str) -> Any:
        """The ``batch/v1`` API (Jobs) through the client named ``key``."""
        from kubernetes.client import BatchV1Api

        return BatchV1Api(self._clients[key])

    def core(self, key: str) -> Any:
        """The core ``v1`` API (pods) through the client named ``key``."""
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self._clients[key])

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _default_chain(configuration: Any, context: str | None, service_account: Path) -> None:
    from kubernetes import config as kube_config

    try:
        kube_config.load_kube_config(context=context, client_configuration=configuration)
    except kube_config.ConfigException:
        load_in_cluster(configuration, service_account)


def is_transient(exc: BaseException) -> bool:
    """True when the same request may succeed later (server restarting, overloaded)."""
    if isinstance(exc, KubernetesError):
        return exc.status in TRANSIENT_STATUS
    return False


def is_gone(exc: BaseException) -> bool:
    return isinstance(exc, KubernetesError) and exc.status == 410


def translate(exc: BaseException, doing: str) -> KubernetesError:
    """Any error of a call to the API server as a ``KubernetesError`` with its status."""
    from kubernetes.client.exceptions import ApiException
    from pydantic import ValidationError
    from urllib3.exceptions import HTTPError

    if isinstance(exc, KubernetesError):
        return exc
    if isinstance(exc, ValidationError):  # the client checks bodies against its models
        return KubernetesError(f"{doing}: the Kubernetes client refused it: {_problems(exc)}", 422)
    if isinstance(exc, ApiException):
        status = int(exc.status or 0)
        return KubernetesError(f"{doing}: {status} {_status_message(exc)}", status)
    if isinstance(exc, HTTPError | OSError | ValueError):
        return KubernetesError(f"{doing}: the API server cannot be reached ({exc})", 0)
    return KubernetesError(f"{doing}: {exc}", 0)


def read_json(call: Any, doing: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Call a client method for its raw answer and return the JSON body."""
    try:
        response = call(*args, _preload_content=False, **kwargs)
        try:
            document: dict[str, Any] = json.loads(response.data or b"{}")
        finally:
            response.release_conn()
        return document
    except Exception as exc:
        raise translate(exc, doing) from exc


def stream_lines(call: Any, doing: str, *args: Any, **kwargs: Any) -> Generator[str, None, None]:
    """Lines of a streamed answer (a watch, or logs that follow), until it ends."""
    try:
        response = call(*args, _preload_content=False, **kwargs)
    except Exception as exc:
        raise translate(exc, doing) from exc
    pending = b""
    try:
        for chunk in response.stream(4096, decode_content=False):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                yield raw.decode(errors="replace").rstrip("\r")
        if pending:
            yield pending.decode(errors="replace")
    except Exception as exc:
        raise translate(exc, doing) from exc
    finally:
        response.close()
        response.release_conn()


def _problems(exc: Any) -> str:
    """``spec.retries: Extra inputs are not permitted`` (no input values: they may be secret)."""
    problems = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        problems.append(f"{path}: {error['msg']}")
    return "; ".join(problems)


def _status_message(exc: Any) -> str:
    """The ``message`` of the API server's Status answer, else the HTTP reason."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    return str(body.get("message") or exc.reason or "error")
