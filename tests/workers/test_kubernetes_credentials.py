"""Credentials that change while a worker runs: a kubeconfig whose user is an exec
credential plugin (as EKS's ``aws eks get-token`` and GKE's ``gke-gcloud-auth-plugin``
are) is asked again for a token once the one it gave expires, and every request carries
the token current at that moment."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowyard.blocks import KubernetesClusterConfig
from flowyard.workers.kubernetes.cluster import connect, read_json
from tests.kube import KubeApiServer, ProcessRuntime

pytestmark = pytest.mark.timeout(60)

PLUGIN = """\
import json, sys
from datetime import datetime, timedelta, timezone
counter = sys.argv[1]
try:
    turn = int(open(counter).read()) + 1
except FileNotFoundError:
    turn = 1
open(counter, "w").write(str(turn))
soon = (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
status = {"token": f"plugin-token-{turn}", "expirationTimestamp": soon}
print(json.dumps({
    "apiVersion": "client.authentication.k8s.io/v1beta1",
    "kind": "ExecCredential",
    "status": status,
}))
"""


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    server = KubeApiServer(ProcessRuntime()).start()
    yield server
    server.stop()


def exec_kubeconfig(url: str, plugin: Path, counter: Path) -> str:
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": sys.executable,
            "args": [str(plugin), str(counter)],
            "interactiveMode": "Never",
        }
    }
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {"server": url}}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "c",
        }
    )


def bearer_tokens(kube: KubeApiServer) -> list[str]:
    return [m for w in kube.wire for m in re.findall(r"(?im)^authorization: bearer (\S+)$", w)]


def test_an_exec_plugin_token_is_renewed_once_it_expires(kube: KubeApiServer, tmp_path: Path):
    """The plugin's token expires at once (the client renews within five minutes of
    expiry): each request runs the plugin again and carries its new token."""
    plugin, counter = tmp_path / "plugin.py", tmp_path / "turns"
    plugin.write_text(PLUGIN)
    text = exec_kubeconfig(kube.url, plugin, counter)
    client = connect(KubernetesClusterConfig(kubeconfig=text))
    try:
        from kubernetes.client import CoreV1Api

        core: Any = CoreV1Api(client)
        for _ in range(2):
            read_json(core.list_namespaced_pod, "list pods", "default")
    finally:
        client.close()
    tokens = bearer_tokens(kube)
    assert len(tokens) == 2 and tokens[0] != tokens[1], tokens
    assert all(t.startswith("plugin-token-") for t in tokens)
    assert int(counter.read_text()) >= 2
