"""The flowyard-server chart's rendered manifests."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import redis
from cryptography.fernet import Fernet

from flowyard.cli.processes import free_port
from flowyard.pools.redis_server import find_redis_server
from tests.helm.conftest import Manifests, container, env_of, find, kinds
from tests.helm.monitoring_schemas import SERVICE_MONITOR
from tests.proc import command_lines
from tests.waiting import wait_until

CHART = "flowyard-server"
Render = Callable[..., Manifests]


def server(manifests: Manifests) -> dict[str, Any]:
    return container(find(manifests, "Deployment"), "server")


def pods(manifests: Manifests) -> list[dict[str, Any]]:
    return [
        m["spec"]["template"]["spec"]
        for m in manifests
        if m["kind"] in ("Deployment", "StatefulSet", "Job")
    ]


def test_bundled_install_runs_postgres_and_redis(render: Render) -> None:
    """A trial install has single-replica PostgreSQL and Redis StatefulSets the API points at."""
    manifests = render(CHART, "bundled-values.yaml")
    postgres = find(manifests, "StatefulSet", "release-flowyard-server-postgresql")
    redis = find(manifests, "StatefulSet", "release-flowyard-server-redis")
    assert postgres["spec"]["replicas"] == redis["spec"]["replicas"] == 1
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "8Gi"
    }
    env = env_of(server(manifests))
    assert env["FLOWYARD_DATABASE_URL"] == (
        "postgresql+psycopg2://flowyard:$(POSTGRES_PASSWORD)"
        "@release-flowyard-server-postgresql:5432/flowyard"
    )
    assert env["FLOWYARD_REDIS_URL"] == (
        "redis://:$(REDIS_PASSWORD)@release-flowyard-server-redis:6379/0"
    )
    # $(VAR) only expands when VAR comes earlier in the list
    names = [e["name"] for e in server(manifests)["env"]]
    assert names.index("POSTGRES_PASSWORD") < names.index("FLOWYARD_DATABASE_URL")
    assert names.index("REDIS_PASSWORD") < names.index("FLOWYARD_REDIS_URL")


def test_the_bundled_redis_gets_its_password_on_stdin(render: Render, tmp_path: Path) -> None:
    """The Redis container's script, run here with a real redis-server and a password
    full of quotes, spaces and backslashes: clients need that password, and no process's
    command line (what ``ps`` on the node shows) carries it."""
    manifests = render(CHART, "bundled-values.yaml")
    statefulset = find(manifests, "StatefulSet", "release-flowyard-server-redis")
    redis_container = container(statefulset, "redis")
    assert redis_container["command"] == ["sh", "-c"]
    assert "REDIS_PASSWORD)" not in json.dumps(redis_container["args"])  # no $(VAR) expansion
    port = free_port()
    script = redis_container["args"][0].replace(
        "redis-server - --dir /data",
        f"redis-server - --port {port} --bind 127.0.0.1 --dir {tmp_path}",
    )
    password = 'p"a ss\\word$HOME`x'
    binary = Path(find_redis_server())
    path = f"{binary.parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "REDIS_PASSWORD": password, "PATH": path}
    process = subprocess.Popen(["sh", "-c", script], env=env, stdin=subprocess.DEVNULL)
    ours = redis.Redis(port=port, password=password, socket_timeout=5)
    try:
        wait_until(lambda: _answers(ours), timeout=30, message="redis-server did not answer")
        with pytest.raises(redis.exceptions.RedisError, match="(?i)auth"):
            redis.Redis(port=port, socket_timeout=5).ping()
        assert [line for line in command_lines() if "ss\\word" in line] == []
        own_line = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert own_line.startswith(b"redis-server")  # exec'd: it gets the pod's signals
    finally:
        process.terminate()
        process.wait(timeout=30)
        ours.close()


def _answers(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


def test_generated_keys_are_usable(render: Render) -> None:
    """Without given keys the chart's Secret holds an API key and a valid Fernet key."""
    manifests = render(CHART, "bundled-values.yaml")
    secret = find(manifests, "Secret")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert set(data) == {"api-key", "secret-key", "postgres-password", "redis-password"}
    assert data["api-key"].startswith("fy_") and len(data["api-key"]) > 40
    token = Fernet(data["secret-key"].encode()).encrypt(b"block secret")
    assert Fernet(data["secret-key"].encode()).decrypt(token) == b"block secret"
    env = env_of(server(manifests))
    name = secret["metadata"]["name"]
    assert env["FLOWYARD_API_KEY"] == {"secretKeyRef": {"name": name, "key": "api-key"}}
    assert env["FLOWYARD_SECRET_KEY"] == {"secretKeyRef": {"name": name, "key": "secret-key"}}


def test_external_backends_and_ingress(render: Render) -> None:
    """Production shape: URLs and keys from the user's Secrets, three replicas, an Ingress."""
    manifests = render(CHART, "external-ingress-values.yaml")
    assert "StatefulSet" not in kinds(manifests)
    assert "Secret" not in kinds(manifests)  # every secret value came from the user
    deployment = find(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    env = env_of(server(manifests))
    assert env["FLOWYARD_DATABASE_URL"] == {
        "secretKeyRef": {"name": "flowyard-database", "key": "database-url"}
    }
    assert env["FLOWYARD_REDIS_URL"] == {"secretKeyRef": {"name": "flowyard-redis", "key": "url"}}
    assert env["FLOWYARD_API_KEY"] == {
        "secretKeyRef": {"name": "flowyard-admin-key", "key": "api-key"}
    }
    ingress = find(manifests, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "flowyard.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    service = find(manifests, "Service")
    assert backend == {"name": service["metadata"]["name"], "port": {"number": 4200}}
    assert ingress["spec"]["tls"][0]["secretName"] == "flowyard-tls"
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_api_listens_beyond_loopback_with_a_key(render: Render) -> None:
    """The API binds all interfaces (so it needs FLOWYARD_API_KEY) and the Service reaches it."""
    manifests = render(CHART, "bundled-values.yaml")
    item = server(manifests)
    env = env_of(item)
    assert env["FLOWYARD_SERVER_HOST"] == "0.0.0.0"
    assert "FLOWYARD_API_KEY" in env
    assert item["args"] == ["flowyard", "server", "start"]
    service = find(manifests, "Service", "release-flowyard-server")
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert item["ports"][0] == {"name": "http", "containerPort": 4200, "protocol": "TCP"}


def test_probes(render: Render) -> None:
    """Liveness on /docs; readiness checks /api/health with the key from the environment."""
    item = server(render(CHART, "bundled-values.yaml"))
    assert item["livenessProbe"]["httpGet"] == {"path": "/docs", "port": "http"}
    script = item["readinessProbe"]["exec"]["command"][-1]
    assert "/api/health" in script and 'os.environ["FLOWYARD_API_KEY"]' in script
    compile(script, "readiness", "exec")  # the probe is valid Python


def test_migration_job_is_a_hook(render: Render) -> None:
    """``flowyard server migrate`` runs before upgrades; at install after a bundled database."""
    bundled = find(render(CHART, "bundled-values.yaml"), "Job")
    external = find(render(CHART, "external-ingress-values.yaml"), "Job")
    assert container(bundled, "migrate")["args"] == ["flowyard", "server", "migrate"]
    assert bundled["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"
    assert external["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    env = env_of(container(external, "migrate"))
    assert env["FLOWYARD_DATABASE_URL"]["secretKeyRef"]["name"] == "flowyard-database"
    assert "FLOWYARD_REDIS_URL" not in env  # migrating needs the database only
    # a pre-install hook runs before the chart's own objects exist
    assert "serviceAccountName" not in external["spec"]["template"]["spec"]


def test_migrations_can_be_turned_off(render: Render) -> None:
    """migrations.enabled=false renders no Job."""
    assert "Job" not in kinds(
        render(CHART, "bundled-values.yaml", **{"migrations.enabled": "false"})
    )


def test_security_context_of_every_pod(render: Render) -> None:
    """Every pod runs non-root with a read-only root and no capabilities; the API as 10001."""
    manifests = render(CHART, "bundled-values.yaml")
    for pod in pods(manifests):
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for item in pod["containers"]:
            context = item["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["allowPrivilegeEscalation"] is False
    api = find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert api["securityContext"]["runAsUser"] == 10001
    mounts = {m["mountPath"] for m in api["containers"][0]["volumeMounts"]}
    assert {"/home/flowyard", "/tmp"} <= mounts


def test_missing_external_database_stops_rendering(render_error: Callable[..., str]) -> None:
    """Turning off the bundled PostgreSQL without a URL Secret fails with a clear message."""
    error = render_error(CHART, **{"postgresql.enabled": "false"})
    assert "externalDatabase.existingSecret is required when postgresql.enabled=false" in error


def test_missing_external_redis_stops_rendering(render_error: Callable[..., str]) -> None:
    """Turning off the bundled Redis without a URL Secret fails with a clear message."""
    error = render_error(CHART, **{"redis.enabled": "false"})
    assert "externalRedis.existingSecret is required when redis.enabled=false" in error


def test_ingress_needs_a_host(render_error: Callable[..., str]) -> None:
    """An enabled Ingress without hosts is refused."""
    assert "ingress.hosts needs at least one host" in render_error(
        CHART, **{"ingress.enabled": "true"}
    )


def test_unknown_value_is_rejected(render_error: Callable[..., str]) -> None:
    """The schema refuses a value it does not know (additionalProperties: false)."""
    error = render_error(CHART, **{"server.replicas": "2"})
    assert "additional properties 'replicas' not allowed" in error


def test_at_least_one_replica(render_error: Callable[..., str]) -> None:
    """server.replicaCount below 1 is refused by the schema."""
    assert "/server/replicaCount" in render_error(CHART, **{"server.replicaCount": "0"})


def test_service_monitor_scrapes_the_api_with_a_viewer_key(render: Render) -> None:
    """The ServiceMonitor selects the API's Service and port and presents the key of the
    Secret given (a viewer key: /metrics needs one); it fits the operator's schema."""
    manifests = render(CHART, "external-ingress-values.yaml")
    monitor = find(manifests, "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    service = find(manifests, "Service", monitor["metadata"]["name"])
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint["path"] == "/metrics"
    credentials = {"name": "flowyard-prometheus-key", "key": "api-key"}
    assert endpoint["authorization"] == {"type": "Bearer", "credentials": credentials}
    assert "ServiceMonitor" not in kinds(render(CHART, "bundled-values.yaml"))


def test_service_monitor_needs_a_key(render_error: Callable[..., str]) -> None:
    """/metrics refuses a scrape without a key: rendering says which Secret to give."""
    error = render_error(CHART, "bundled-values.yaml", **{"serviceMonitor.enabled": "true"})
    assert "serviceMonitor.key.existingSecret" in error


# -- platform features: HPA, sidecars, spread, extra env/volumes, NetworkPolicies ----------


def test_an_hpa_scales_the_api_replicas_instead_of_replica_count(render: Render) -> None:
    """server.autoscaling.enabled: an autoscaling/v2 HPA on the API's Deployment with the
    targets given; the Deployment leaves its replica count to it."""
    manifests = render(CHART, "features-values.yaml")
    hpa = find(manifests, "HorizontalPodAutoscaler")
    deployment = find(manifests, "Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
    }
    assert targets == {"cpu": 75, "memory": 70}
    assert "replicas" not in deployment["spec"]
    assert "HorizontalPodAutoscaler" not in kinds(render(CHART, "bundled-values.yaml"))


def test_an_api_hpa_target_needs_its_request(render_error: Callable[..., str]) -> None:
    """Utilization is a percentage of the request: without one the HPA could not act."""
    error = render_error(CHART, "features-values.yaml", **{"server.resources.requests.cpu": "null"})
    assert "set server.resources.requests.cpu" in error


def test_api_sidecars_init_containers_spread_and_extras(render: Render) -> None:
    """extraContainers run next to the API, extraInitContainers before it; the spread,
    extra env, volumes and mounts land where they belong, beside the chart's own."""
    manifests = render(CHART, "features-values.yaml")
    pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["log-shipper", "server"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-dns"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    api = server(manifests)
    assert env_of(api)["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert "FLOWYARD_DATABASE_URL" in env_of(api)
    assert [v["name"] for v in pod["volumes"]] == ["scratch", "shared"]
    assert {"name": "shared", "mountPath": "/shared"} in api["volumeMounts"]
    assert {"mountPath": "/tmp", "name": "scratch", "subPath": "tmp"} in api["volumeMounts"]


def test_network_policies_fence_the_api_and_the_bundled_backends(render: Render) -> None:
    """The API's port admits only the peers given (egress only the rules given); the
    bundled PostgreSQL and Redis admit only this release's API and migration pods."""
    manifests = render(CHART, "features-values.yaml")
    deployment = find(manifests, "Deployment")
    api_policy = find(manifests, "NetworkPolicy", deployment["metadata"]["name"])["spec"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert api_policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert api_policy["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = api_policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": "http"}]
    assert len(rule["from"]) == 2 and len(api_policy["egress"]) == 2
    migrate_labels = find(manifests, "Job")["spec"]["template"]["metadata"]["labels"]
    for backend in ("postgresql", "redis"):
        name = f"release-flowyard-server-{backend}"
        spec = find(manifests, "NetworkPolicy", name)["spec"]
        backend_labels = find(manifests, "StatefulSet", name)["spec"]["template"]["metadata"]
        assert spec["podSelector"]["matchLabels"].items() <= backend_labels["labels"].items()
        (rule,) = spec["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": backend}]
        peers = [peer["podSelector"]["matchLabels"] for peer in rule["from"]]
        assert any(p.items() <= pod_labels.items() for p in peers)
        assert any(p.items() <= migrate_labels.items() for p in peers)
        assert not any(p.items() <= backend_labels["labels"].items() for p in peers)


def test_network_policies_leave_external_backends_and_open_egress(render: Render) -> None:
    """With a managed database and Redis, only the API's policy is rendered; without
    egress rules it restricts ingress alone, from any source."""
    manifests = render(CHART, "external-ingress-values.yaml", **{"networkPolicy.enabled": "true"})
    (policy,) = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "from" not in policy["spec"]["ingress"][0]
    assert "NetworkPolicy" not in kinds(render(CHART, "bundled-values.yaml"))


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("server.autoscaling.minReplicas", "0", "/server/autoscaling/minReplicas"),
        ("server.extraContainers[0].name", "no-image", "/server/extraContainers/0"),
        ("server.extraVolumeMounts[0].name", "no-path", "/server/extraVolumeMounts/0"),
        ("networkPolicy.enable", "true", "'enable' not allowed"),
    ],
)
def test_schema_refuses_bad_feature_values(
    render_error: Callable[..., str], key: str, value: str, where: str
) -> None:
    """values.schema.json covers the new values: a bad one stops rendering, named."""
    assert where in render_error(CHART, "bundled-values.yaml", **{key: value})
