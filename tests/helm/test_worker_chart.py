"""The flowyard-worker chart's rendered manifests."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import jsonschema
import pytest

from tests.helm.conftest import Manifests, container, env_of, find, kinds
from tests.helm.keda_schemas import SCHEMAS
from tests.helm.monitoring_schemas import SERVICE_MONITOR

CHART = "flowyard-worker"
Render = Callable[..., Manifests]
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def worker(manifests: Manifests) -> dict[str, Any]:
    return container(find(manifests, "Deployment"), "worker")


def test_minimal_install_has_no_rbac_and_no_token(render: Render) -> None:
    """A process worker gets no RBAC objects and no service-account token."""
    manifests = render(CHART, "minimal-values.yaml")
    assert RBAC_KINDS.isdisjoint(kinds(manifests))
    pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert find(manifests, "ServiceAccount")["automountServiceAccountToken"] is False


@pytest.mark.parametrize("worker_type", ["process", "docker", "lambda"])
def test_rbac_only_for_the_kubernetes_type(render: Render, worker_type: str) -> None:
    """Other worker types never get Roles, even with rbac.create and clusterWide set."""
    manifests = render(
        CHART,
        "minimal-values.yaml",
        **{"worker.type": worker_type, "kubernetes.clusterWide": "true"},
    )
    assert RBAC_KINDS.isdisjoint(kinds(manifests))


def test_kubernetes_type_gets_a_role_in_the_job_namespace(render: Render) -> None:
    """A Role and RoleBinding for jobs, pods, pods/log and events, in the namespace the Jobs
    go to."""
    manifests = render(CHART, "kubernetes-rbac-values.yaml")
    role, binding = find(manifests, "Role"), find(manifests, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "flowyard-runs"
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert {"jobs", "pods", "pods/log"} <= resources
    verbs = {
        resource: set(rule["verbs"]) for rule in role["rules"] for resource in rule["resources"]
    }
    assert verbs == {
        "jobs": {"create", "get", "list", "watch", "delete"},
        "pods": {"get", "list", "watch"},
        "pods/log": {"get"},
        "events": {"get", "list", "watch"},  # why admission refused a pod
    }  # least privilege: nothing on Secrets or nodes
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    account = find(manifests, "ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": "flowyard"}
    ]
    assert "ClusterRole" not in kinds(manifests)
    assert find(manifests, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"]


def test_cluster_wide_uses_a_cluster_role(render: Render) -> None:
    """kubernetes.clusterWide swaps the Role for a ClusterRole and ClusterRoleBinding."""
    manifests = render(CHART, "cluster-wide-values.yaml")
    assert {"ClusterRole", "ClusterRoleBinding"} <= set(kinds(manifests))
    assert {"Role", "RoleBinding"}.isdisjoint(kinds(manifests))
    assert "namespace" not in find(manifests, "ClusterRole")["metadata"]
    role = find(manifests, "ClusterRole")["metadata"]["name"]
    assert role == "flowyard-release-flowyard-worker"  # the namespace keeps it unique
    assert find(manifests, "ClusterRoleBinding")["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role,
    }


def test_rbac_can_be_left_to_the_cluster_admin(render: Render) -> None:
    """rbac.create=false renders no RBAC objects for the kubernetes type."""
    manifests = render(CHART, "kubernetes-rbac-values.yaml", **{"rbac.create": "false"})
    assert RBAC_KINDS.isdisjoint(kinds(manifests))


def test_api_key_from_an_existing_secret(render: Render) -> None:
    """FLOWYARD_API_KEY is read from the named Secret and key; the chart makes no Secret."""
    manifests = render(CHART, "kubernetes-rbac-values.yaml")
    assert env_of(worker(manifests))["FLOWYARD_API_KEY"] == {
        "secretKeyRef": {"name": "flowyard-worker-key", "key": "token"}
    }
    assert "Secret" not in kinds(manifests)


def test_api_key_from_a_value_goes_into_a_secret(render: Render) -> None:
    """api.key.value becomes a Secret that the worker reads; the value is not in the pod."""
    manifests = render(CHART, "cluster-wide-values.yaml")
    secret = find(manifests, "Secret")
    assert base64.b64decode(secret["data"]["api-key"]).decode() == "fy_test_key"
    ref = env_of(worker(manifests))["FLOWYARD_API_KEY"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": "api-key"}
    assert "fy_test_key" not in json.dumps(find(manifests, "Deployment"))


@pytest.mark.parametrize("values", ["kubernetes-rbac-values.yaml", "cluster-wide-values.yaml"])
def test_key_stays_with_the_kubernetes_worker(render: Render, values: str) -> None:
    """The key's Secret is made in the worker's namespace only (not the Jobs'), and nothing
    tells the worker to hand it to Jobs: they get run tokens."""
    manifests = render(CHART, values, **{"kubernetes.namespace": "runs"})
    namespaces = [m["metadata"]["namespace"] for m in manifests if m["kind"] == "Secret"]
    assert namespaces in ([], ["flowyard"])
    names = set(env_of(worker(manifests)))
    assert {name for name in names if "SECRET" in name} == set(), names


def test_api_key_from_secret_is_no_longer_a_value(render_error: Callable[..., str]) -> None:
    """kubernetes.apiKeyFromSecret is gone: the schema refuses it rather than ignore it."""
    error = render_error(
        CHART, "kubernetes-rbac-values.yaml", **{"kubernetes.apiKeyFromSecret": "true"}
    )
    assert "additional properties 'apiKeyFromSecret' not allowed" in error


def test_worker_command_and_probes(render: Render) -> None:
    """The worker serves /health on --metrics-port, which both probes hit."""
    manifests = render(CHART, "kubernetes-rbac-values.yaml")
    item = worker(manifests)
    args = item["args"]
    assert args[:3] == ["flowyard", "worker", "start"]
    assert args[args.index("--pool") + 1] == "k8s"
    assert args[args.index("--type") + 1] == "kubernetes"
    assert args[args.index("--limit") + 1] == "20"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--work-queue"] == ["high", "default"]
    assert args[args.index("--metrics-port") + 1] == "8080"
    assert item["ports"] == [{"name": "metrics", "containerPort": 8080, "protocol": "TCP"}]
    for probe in ("livenessProbe", "readinessProbe"):
        assert item[probe]["httpGet"] == {"path": "/health", "port": "metrics"}
    assert env_of(item)["FLOWYARD_API_URL"] == "http://flowyard-server.flowyard:4200"


def test_probes_follow_the_metrics_port(render: Render) -> None:
    """Changing worker.metricsPort moves the flag and the container port together."""
    item = worker(render(CHART, "minimal-values.yaml", **{"worker.metricsPort": "9100"}))
    assert item["args"][item["args"].index("--metrics-port") + 1] == "9100"
    assert item["ports"][0]["containerPort"] == 9100


def test_scheduling_values_reach_the_pod(render: Render) -> None:
    """Node selector, tolerations and affinity are copied to the pod spec."""
    pod = find(render(CHART, "kubernetes-rbac-values.yaml"), "Deployment")["spec"]["template"]
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"][0]["value"] == "flowyard"
    assert "podAntiAffinity" in spec["affinity"]


def test_security_context(render: Render) -> None:
    """Non-root uid 10001, read-only root, no capabilities; home and /tmp are emptyDir."""
    manifests = render(CHART, "kubernetes-rbac-values.yaml")
    pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    for item in pod["containers"] + pod["initContainers"]:
        context = item["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m["name"] for m in item["volumeMounts"]}
        assert mounts["/home/flowyard"] == mounts["/tmp"] == "scratch"
    assert {"name": "scratch", "emptyDir": {}} in pod["volumes"]
    assert env_of(pod["containers"][0])["FLOWYARD_HOME"].startswith("/home/flowyard/")


def test_base_job_template_goes_through_a_configmap(render: Render) -> None:
    """The template lands in a ConfigMap that an init container applies to the pool."""
    manifests = render(CHART, "kubernetes-rbac-values.yaml")
    config = find(manifests, "ConfigMap")
    template = json.loads(config["data"]["base-job-template.json"])
    assert template["variables"]["properties"]["namespace"]["default"] == "flowyard-runs"
    deployment = find(manifests, "Deployment")
    init = container(deployment, "apply-base-job-template")
    script = init["args"][0]
    assert "flowyard work-pool create" in script and "flowyard work-pool update" in script
    assert env_of(init)["POOLS"] == "k8s" and env_of(init)["POOL_TYPE"] == "kubernetes"
    admin_ref = env_of(init)["FLOWYARD_ADMIN_API_KEY"]["secretKeyRef"]
    assert admin_ref == {"name": "flowyard-pool-admin", "key": "api-key", "optional": True}
    assert "FLOWYARD_ADMIN_API_KEY" not in env_of(worker(manifests))  # the init container's only
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == config["metadata"]["name"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/base-job-template" in annotations


def test_no_template_no_init_container(render: Render) -> None:
    """Without a base job template the worker creates its pool itself: no init container."""
    manifests = render(CHART, "minimal-values.yaml")
    assert "initContainers" not in find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert "ConfigMap" not in kinds(manifests)


def test_invalid_template_json_stops_rendering(render_error: Callable[..., str]) -> None:
    """A base job template that is not JSON is refused with a message."""
    error = render_error(CHART, "minimal-values.yaml", **{"baseJobTemplate.json": "not-json"})
    assert "baseJobTemplate.json is not a JSON object" in error


def test_no_keda_by_default(render: Render) -> None:
    """Without keda.enabled there is no ScaledObject and replicas come from replicaCount."""
    manifests = render(CHART, "minimal-values.yaml", replicaCount="3")
    assert "ScaledObject" not in kinds(manifests)
    assert find(manifests, "Deployment")["spec"]["replicas"] == 3


def test_keda_scales_on_the_pools_queue_depth(render: Render) -> None:
    """The ScaledObject targets the Deployment and sums the pool's ready runs in Prometheus."""
    manifests = render(CHART, "keda-values.yaml")
    scaled = find(manifests, "ScaledObject")
    deployment = find(manifests, "Deployment")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["spec"]["minReplicaCount"] == 0
    assert scaled["spec"]["maxReplicaCount"] == 20
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metadata"]["serverAddress"] == "http://prometheus-server.monitoring:80"
    assert 'flowyard_queue_ready_runs{pool="scaled"}' in trigger["metadata"]["query"]
    assert trigger["metadata"]["threshold"] == "4"
    assert "replicas" not in deployment["spec"]  # KEDA owns the replica count


def test_keda_metrics_api_reads_the_api_with_an_admin_key(render: Render) -> None:
    """The metrics-api trigger reads <api>/metrics with a bearer key from the given Secret."""
    manifests = render(CHART, "keda-metrics-api-values.yaml")
    scaled, auth = find(manifests, "ScaledObject"), find(manifests, "TriggerAuthentication")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "metrics-api"
    assert trigger["metadata"]["url"] == "http://flowyard-server.flowyard:4200/metrics"
    assert trigger["metadata"]["format"] == "prometheus"
    assert trigger["metadata"]["valueLocation"] == (
        'flowyard_queue_ready_runs{pool="scaled-direct",queue="default"}'
    )
    assert trigger["metadata"]["authMode"] == "bearer"
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "token", "name": "flowyard-admin-key", "key": "api-key"}
    ]


def test_keda_prometheus_needs_a_server(render_error: Callable[..., str]) -> None:
    """The prometheus trigger without a server address stops rendering with a message."""
    error = render_error(CHART, "minimal-values.yaml", **{"keda.enabled": "true"})
    assert "keda.prometheus.serverAddress is required" in error


def test_pod_disruption_budget(render: Render) -> None:
    """A PodDisruptionBudget selects the worker pods."""
    manifests = render(CHART, "minimal-values.yaml")
    budget = find(manifests, "PodDisruptionBudget")
    labels = find(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_several_pools_are_served_by_one_worker_process(render: Render) -> None:
    """worker.pools adds pools to worker.pool: one --pool each in the worker's arguments,
    and KEDA's Prometheus query sums their waiting runs (names matched literally)."""
    sets = {"worker.pools": "{b.1,c}", "keda.enabled": "true"}
    manifests = render(CHART, "keda-values.yaml", **sets)
    args = worker(manifests)["args"]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--pool"] == ["scaled", "b.1", "c"]
    (trigger,) = find(manifests, "ScaledObject")["spec"]["triggers"]
    assert 'flowyard_queue_ready_runs{pool=~"scaled|b\\\\.1|c"}' in trigger["metadata"]["query"]


def test_pools_alone_or_with_a_repeated_pool(
    render: Render, render_error: Callable[..., str]
) -> None:
    """worker.pools may stand without worker.pool (one metrics-api trigger per pool); a pool
    named in both stops rendering."""
    only = {"worker.pool": "", "worker.pools": "{a,b}"}
    manifests = render(CHART, "keda-metrics-api-values.yaml", **only)
    args = worker(manifests)["args"]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--pool"] == ["a", "b"]
    triggers = find(manifests, "ScaledObject")["spec"]["triggers"]
    assert [t["metadata"]["valueLocation"] for t in triggers] == [
        f'flowyard_queue_ready_runs{{pool="{pool}",queue="default"}}' for pool in ("a", "b")
    ]
    error = render_error(CHART, "minimal-values.yaml", **{"worker.pools": "{local}"})
    assert "worker.pool and worker.pools name a work pool twice" in error


def test_missing_pool_stops_rendering(render_error: Callable[..., str]) -> None:
    """Without worker.pool nothing renders, and the message says which value to set."""
    error = render_error(CHART, **{"api.url": "http://api:4200"})
    assert "worker.pool is required" in error


def test_missing_api_url_stops_rendering(render_error: Callable[..., str]) -> None:
    """Without api.url nothing renders, and the message says which value to set."""
    error = render_error(CHART, **{"worker.pool": "p"})
    assert "api.url is required" in error


def test_unknown_value_is_rejected(render_error: Callable[..., str]) -> None:
    """The schema refuses a value it does not know (additionalProperties: false)."""
    error = render_error(CHART, "minimal-values.yaml", **{"worker.pol": "typo"})
    assert "additional properties 'pol' not allowed" in error


def test_unknown_worker_type_is_rejected(render_error: Callable[..., str]) -> None:
    """worker.type must be one of the built-in types."""
    error = render_error(CHART, "minimal-values.yaml", **{"worker.type": "nomad"})
    assert "/worker/type" in error


@pytest.mark.parametrize("values", ["keda-values.yaml", "keda-metrics-api-values.yaml"])
def test_keda_objects_match_kedas_schema(render: Render, values: str) -> None:
    """ScaledObject and TriggerAuthentication fit KEDA's CRD schema (metadata as strings)."""
    keda = [m for m in render(CHART, values) if m["apiVersion"].startswith("keda.sh/")]
    assert keda
    for manifest in keda:
        jsonschema.validate(manifest, SCHEMAS[manifest["kind"]])


def test_keda_schema_catches_a_number_in_trigger_metadata(render: Render) -> None:
    """The KEDA schema check is not a no-op: a number in trigger metadata is refused."""
    scaled = find(render(CHART, "keda-values.yaml"), "ScaledObject")
    scaled["spec"]["triggers"][0]["metadata"]["threshold"] = 4
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, SCHEMAS["ScaledObject"])


# -- platform features: HPA, sidecars, extra RBAC, spread, NetworkPolicy, ServiceMonitor ---


def test_an_hpa_scales_on_cpu_and_memory_instead_of_replicas(render: Render) -> None:
    """autoscaling.enabled: an autoscaling/v2 HPA on the Deployment with the targets given;
    the Deployment leaves its replica count to it."""
    manifests = render(CHART, "features-values.yaml")
    hpa = find(manifests, "HorizontalPodAutoscaler")
    deployment = find(manifests, "Deployment")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
    }
    assert targets == {"cpu": 80, "memory": 70}
    assert "replicas" not in deployment["spec"]
    assert "HorizontalPodAutoscaler" not in kinds(render(CHART, "minimal-values.yaml"))


def test_hpa_and_keda_together_are_refused(render_error: Callable[..., str]) -> None:
    """Two autoscalers on one Deployment would fight: rendering says to choose one."""
    error = render_error(CHART, "keda-values.yaml", **{"autoscaling.enabled": "true"})
    assert "choose one" in error


def test_an_hpa_target_needs_the_request_it_is_a_percentage_of(
    render_error: Callable[..., str],
) -> None:
    """Utilization is a percentage of the request: without one the HPA could not act."""
    error = render_error(CHART, "features-values.yaml", **{"resources.requests.memory": "null"})
    assert "set resources.requests.memory" in error


def test_sidecars_init_containers_spread_and_extra_env(render: Render) -> None:
    """extraContainers run next to the worker, extraInitContainers before it; the spread,
    extra env, volumes and mounts land where they belong."""
    manifests = render(CHART, "features-values.yaml")
    pod = find(manifests, "Deployment")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["log-shipper", "worker"]
    assert [c["name"] for c in pod["initContainers"]] == ["wait-for-api"]
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    assert env_of(worker(manifests))["HTTPS_PROXY"] == "http://proxy.internal:3128"
    assert {"name": "shared", "emptyDir": {}} in pod["volumes"]
    assert {"name": "shared", "mountPath": "/shared"} in worker(manifests)["volumeMounts"]


def test_extra_rbac_rules_are_added_to_the_workers_own(render: Render) -> None:
    """rbac.extraRules come after the Jobs/pods/logs rules, which stay."""
    rules = find(render(CHART, "features-values.yaml"), "Role")["rules"]
    assert rules[-1] == {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
    assert {"apiGroups": ["batch"], "resources": ["jobs"]}.items() <= rules[0].items()


def test_network_policy_admits_only_metrics_scrapes(render: Render) -> None:
    """The policy selects the worker pods, lets in only the metrics port from the peers
    given, and restricts egress to the rules given."""
    manifests = render(CHART, "features-values.yaml")
    policy = find(manifests, "NetworkPolicy")["spec"]
    pod_labels = find(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    assert rule["from"][0]["namespaceSelector"]["matchLabels"]
    assert len(policy["egress"]) == 2
    open_egress = render(CHART, "minimal-values.yaml", **{"networkPolicy.enabled": "true"})
    spec = find(open_egress, "NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress"] and "from" not in spec["ingress"][0]


def test_service_monitor_scrapes_every_worker_pod(render: Render) -> None:
    """A headless Service over the pods' metrics port, and a ServiceMonitor that selects it
    (and fits the operator's schema)."""
    manifests = render(CHART, "features-values.yaml")
    monitor = find(manifests, "ServiceMonitor")
    jsonschema.validate(monitor, SERVICE_MONITOR)
    service = find(manifests, "Service")
    pod_labels = find(manifests, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"].items() <= pod_labels.items()
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert not selector.items() <= pod_labels.items()  # the Service, not the pods directly
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "metrics"
    assert "ServiceMonitor" not in kinds(render(CHART, "minimal-values.yaml"))


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("autoscaling.targetCPUUtilizationPercentage", "0", "/autoscaling/targetCPU"),
        ("extraContainers[0].name", "no-image", "/extraContainers/0"),
        ("serviceMonitor.interval", "often", "/serviceMonitor/interval"),
        ("networkPolicy.enable", "true", "'enable' not allowed"),
    ],
)
def test_schema_refuses_bad_feature_values(
    render_error: Callable[..., str], key: str, value: str, where: str
) -> None:
    """values.schema.json covers the new values: a bad one stops rendering, named."""
    assert where in render_error(CHART, "minimal-values.yaml", **{key: value})


def test_service_monitor_schema_catches_a_typo(render: Render) -> None:
    """The ServiceMonitor schema check is not a no-op: an unknown endpoint field fails."""
    monitor = find(render(CHART, "features-values.yaml"), "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["intervall"] = "30s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(monitor, SERVICE_MONITOR)
