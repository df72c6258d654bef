"""The Job manifest, its checks, and the readings of Job and pod status: pure, no I/O."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
from pydantic import ValidationError

from flowyard import schemas as s
from flowyard.errors import InvalidInput
from flowyard.states import StateType
from flowyard.workers.kubernetes import (
    KubernetesVariables,
    ManifestError,
    adoption,
    check_manifest,
    outcomes,
)
from flowyard.workers.kubernetes.logs import sortable
from flowyard.workers.kubernetes.manifest import (
    RunIdentity,
    build_manifest,
    job_name,
    label_value,
)
from flowyard.workers.kubernetes.validation import manifest_problems
from tests.kube.admission import restricted_violations
from tests.kube.server import KUBE_VERSION

RUN = RunIdentity(
    run_id="0b7e6a52-3f0e-4a8e-9d51-2f6c1e0c9a11",
    run_name="crimson-otter",
    flow_name="ETL: nightly load",
    pool="k8s",
    worker="kubernetes-host-abc123",
    deployment_id="d3f1c2b4-0000-4000-8000-000000000001",
    deployment_name="nightly",
)
ENGINE = {"FLOWYARD_API_URL": "http://api:4200", "FLOWYARD_CLAIM_TOKEN": "t0k"}


def build(**variables: object) -> dict:
    return build_manifest(KubernetesVariables(**variables), RUN, ENGINE, "ab12c")


def flow_container(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]["containers"][0]


class TestDefaultManifest:
    def test_default_manifest_is_a_valid_job_for_kubernetes(self):
        """Every variable set: the manifest passes kubernetes-validate --strict and our checks."""
        manifest = build(
            image="registry.example.com/flows:1.2",
            namespace="flows",
            service_account_name="flow-runner",
            cpu_request="250m",
            memory_limit="1Gi",
            node_selector={"kubernetes.io/os": "linux"},
            tolerations=[{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}],
            image_pull_secrets=["regcred"],
            active_deadline_seconds=600,
            env={"LOG_LEVEL": "debug"},
        )
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        assert manifest_problems(manifest) == []
        pod = manifest["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "flow-runner"
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert flow_container(manifest)["resources"] == {
            "requests": {"cpu": "250m"},
            "limits": {"memory": "1Gi"},
        }
        assert manifest["spec"]["activeDeadlineSeconds"] == 600

    def test_defaults_one_attempt_and_a_ttl(self):
        """backoffLimit 0 (Flowyard retries flows), restartPolicy Never, a finished-Job TTL."""
        manifest = build()
        assert manifest["spec"]["backoffLimit"] == 0
        assert manifest["spec"]["ttlSecondsAfterFinished"] == 3600
        assert manifest["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert "activeDeadlineSeconds" not in manifest["spec"]

    def test_labels_and_annotations_on_job_and_pod(self):
        """Run, deployment, pool and worker labels on the Job and its pods; full names as
        annotations when the label had to change them."""
        manifest = build(labels={"team": "data"})
        for metadata in (manifest["metadata"], manifest["spec"]["template"]["metadata"]):
            assert metadata["labels"]["flowyard.io/flow-run-id"] == RUN.run_id
            assert metadata["labels"]["flowyard.io/pool"] == "k8s"
            assert metadata["labels"]["flowyard.io/deployment-id"] == RUN.deployment_id
            assert metadata["labels"]["flowyard.io/flow-name"] == "ETL-nightly-load"
            assert metadata["labels"]["team"] == "data"
            assert metadata["annotations"]["flowyard.io/flow-name"] == "ETL: nightly load"

    def test_engine_command_and_environment(self):
        """The engine runs the run; its variables replace user variables of the same name."""
        manifest = build(env={"FLOWYARD_API_URL": "http://elsewhere", "KEEP": "1"})
        container = flow_container(manifest)
        assert container["command"] == ["python", "-m", "flowyard.engine", RUN.run_id]
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env == {"KEEP": "1", **ENGINE}

    def test_default_job_meets_pod_security_restricted(self):
        """The flow container's default securityContext passes the "restricted" rules; the
        ``security_context`` variable replaces it ({} for none)."""
        default = build()
        assert restricted_violations(default["spec"]["template"]["spec"]) == []
        assert flow_container(default)["securityContext"]["runAsNonRoot"] is True
        opened = build(security_context={})
        assert "securityContext" not in flow_container(opened)
        assert len(restricted_violations(opened["spec"]["template"]["spec"])) == 4
        own = build(security_context={"runAsUser": 1000, "privileged": False})
        assert flow_container(own)["securityContext"] == {"runAsUser": 1000, "privileged": False}
        kubernetes_validate.validate(own, KUBE_VERSION, strict=True)

    def test_command_variable_is_split_like_a_shell(self):
        """``command`` is one string, split as a shell would (quotes kept together)."""
        assert flow_container(build(command="sh -c 'echo hi'"))["command"] == [
            "sh",
            "-c",
            "echo hi",
        ]

    def test_job_name_is_a_short_dns_label(self):
        """Any flow name gives a DNS-1123 label of at most 63 characters, unique per launch."""
        long = RunIdentity(**{**RUN.__dict__, "flow_name": "Ünïcode " + "x" * 100})
        name = job_name(long, "ab12c")
        assert len(name) <= 63 and name.endswith("-0b7e6a52-ab12c") and name.startswith("fy-")
        assert manifest_problems(build()) == []

    def test_label_value_is_cleaned(self):
        """Names become label values: allowed characters, alphanumeric ends, 63 at most."""
        assert label_value("-ETL: nightly load!-") == "ETL-nightly-load"
        assert len(label_value("y" * 100)) == 63


class TestCustomManifest:
    def test_custom_manifest_kept_and_completed(self):
        """A job_manifest keeps its fields; the worker adds name, namespace, labels, engine."""
        custom = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"namespace": "batch", "generateName": "x-", "labels": {"a": "b"}},
            "spec": {
                "parallelism": 1,
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "sidecar", "image": "proxy:1"},
                            {"name": "flowyard", "image": "flows:2", "command": ["run"]},
                        ]
                    }
                },
            },
        }
        manifest = build(job_manifest=custom)
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        assert manifest["metadata"]["namespace"] == "batch"
        assert "generateName" not in manifest["metadata"]
        assert manifest["spec"]["parallelism"] == 1
        sidecar, flow = manifest["spec"]["template"]["spec"]["containers"]
        assert "env" not in sidecar and flow["command"] == ["run"]
        assert {e["name"] for e in flow["env"]} == set(ENGINE)
        assert manifest["metadata"]["labels"]["a"] == "b"
        assert custom["metadata"]["labels"] == {"a": "b"}  # the variable is not modified


TOKEN = "fyrt_" + "run-token-of-this-run"


def custom_job(env: list[dict]) -> dict:
    """A job_manifest whose only container has ``env``."""
    container = {"name": "flowyard", "image": "i", "env": env}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"template": {"spec": {"containers": [container]}}},
    }


class TestApiKey:
    def test_run_token_is_a_plain_value_of_the_flow_container(self):
        """The engine's FLOWYARD_API_KEY (the run's token) is a plain variable, valid for
        Kubernetes, and no other variable names an API key."""
        manifest = build_manifest(
            KubernetesVariables(), RUN, {**ENGINE, "FLOWYARD_API_KEY": TOKEN}, "ab12c"
        )
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        env = flow_container(manifest)["env"]
        assert [e for e in env if "API_KEY" in e["name"]] == [
            {"name": "FLOWYARD_API_KEY", "value": TOKEN}
        ]

    @pytest.mark.parametrize(
        "given",
        [
            {"name": "FLOWYARD_API_KEY", "value": "fy_worker-key"},
            {
                "name": "FLOWYARD_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": "flowyard-worker-key", "key": "api-key"}},
            },
        ],
    )
    def test_job_manifest_api_key_gives_way_to_the_run_token(self, given: dict):
        """A FLOWYARD_API_KEY of a job_manifest, plain or from a Secret, is replaced by the
        run's token: a template cannot hand the pod another credential."""
        variables = KubernetesVariables(job_manifest=custom_job([given]))
        manifest = build_manifest(variables, RUN, {**ENGINE, "FLOWYARD_API_KEY": TOKEN}, "x")
        env = flow_container(manifest)["env"]
        assert [e for e in env if e["name"] == "FLOWYARD_API_KEY"] == [
            {"name": "FLOWYARD_API_KEY", "value": TOKEN}
        ]
        assert "flowyard-worker-key" not in json.dumps(manifest)

    def test_api_key_secret_is_no_longer_a_job_variable(self):
        """The kubernetes pool's schema has no api_key_secret: a deployment naming it is
        refused instead of silently running with something other than the run's token."""
        from flowyard.blocks import merge_variables
        from flowyard.workers.kubernetes import KubernetesWorker

        template = KubernetesWorker.default_base_job_template()
        assert "api_key_secret" not in template["variables"]["properties"]
        with pytest.raises(InvalidInput, match="unknown job variable 'api_key_secret'"):
            merge_variables(template, {"api_key_secret": {"name": "fy-key"}})


class TestUserSecretReferences:
    def test_secret_reference_of_a_user_variable_is_kept(self):
        """A job_manifest variable read from a Secret reaches the pod spec unchanged."""
        ref = {"name": "warehouse.creds", "key": "token"}
        given = {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": ref}}
        manifest = build(job_manifest=custom_job([given]))
        assert given in flow_container(manifest)["env"]
        assert manifest_problems(manifest) == []

    def test_custom_manifest_secret_references_are_checked(self):
        """A secretKeyRef of a job_manifest with a bad name or key is named by its path."""
        ref = {"name": "Bad_Name", "key": "a b"}
        env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": ref}}]
        text = " ".join(manifest_problems(build(job_manifest=custom_job(env))))
        assert "env[0].valueFrom.secretKeyRef.name: 'Bad_Name'" in text
        assert "env[0].valueFrom.secretKeyRef.key: 'a b' is not a Secret key" in text


class TestChecks:
    @pytest.mark.parametrize(
        ("variables", "expected"),
        [
            ({"labels": {"team": "data science"}}, "metadata.labels[team]: 'data science'"),
            ({"labels": {"bad key!": "x"}}, "'bad key!' is not a valid key name"),
            ({"env": {"1-BAD NAME": "x"}}, "env[0].name: '1-BAD NAME'"),
            ({"node_selector": {"zone": "a" * 64}}, "nodeSelector[zone]"),
            ({"image_pull_secrets": ["Not_Valid"]}, "imagePullSecrets[0].name"),
            ({"tolerations": [{"operator": "Sometimes"}]}, "tolerations[0].operator"),
        ],
    )
    def test_bad_values_are_named(self, variables: dict, expected: str):
        """Each value Kubernetes would refuse is reported with its path, before any I/O."""
        with pytest.raises(ManifestError, match="invalid Kubernetes Job manifest") as caught:
            check_manifest(build(**variables))
        assert expected in str(caught.value)

    def test_custom_manifest_mistakes_are_all_listed(self):
        """Missing image, bad restart policy, bad quantity, bad namespace: every one named."""
        custom = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"namespace": "Team_A"},
            "spec": {
                "backoffLimit": -1,
                "template": {
                    "spec": {
                        "restartPolicy": "Always",
                        "containers": [
                            {"name": "flowyard", "resources": {"limits": {"cpu": "lots"}}}
                        ],
                    }
                },
            },
        }
        problems = manifest_problems(build(job_manifest=custom))
        text = "\n".join(problems)
        assert "metadata.namespace: 'Team_A' is not a DNS-1123 label" in text
        assert "spec.backoffLimit: must be an integer >= 0" in text
        assert "restartPolicy: a Job's pod needs Never or OnFailure" in text
        assert "containers[0].image: is required" in text
        assert "resources.limits.cpu: 'lots' is not a quantity" in text

    def test_secret_values_never_in_messages(self):
        """A bad environment entry is named by its variable, never by its value."""
        custom = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": "c", "image": "i", "env": [{"name": "T", "value": 12345}]}
                        ]
                    }
                }
            },
        }
        problems = " ".join(manifest_problems(build(job_manifest=custom)))
        assert "env[0] (T): the value must be a string" in problems and "12345" not in problems

    def test_bad_job_variables_are_refused_with_the_field(self):
        """Quantities, names and numbers are checked when the variables are read."""
        with pytest.raises(ValidationError, match="cpu_request"):
            KubernetesVariables(cpu_request="lots")
        with pytest.raises(ValidationError, match="namespace"):
            KubernetesVariables(namespace="Not A Namespace")
        with pytest.raises(ValidationError, match="backoff_limit"):
            KubernetesVariables(backoff_limit=-1)

    def test_pool_schema_refuses_bad_quantities(self):
        """The pool's JSON schema carries the patterns: a deployment is refused up front."""
        from flowyard.blocks import merge_variables
        from flowyard.workers.kubernetes import KubernetesWorker

        template = KubernetesWorker.default_base_job_template()
        with pytest.raises(InvalidInput, match="memory_limit"):
            merge_variables(template, {"memory_limit": "a lot"})
        merged = merge_variables(template, {"memory_limit": "512Mi"})
        assert merged["memory_limit"] == "512Mi" and merged["backoff_limit"] == 0


def pod(phase: str, **status: object) -> dict:
    return {
        "metadata": {"name": f"p-{phase}", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "flowyard"}]},
        "status": {"phase": phase, **status},
    }


class TestOutcomes:
    def test_pending_reasons_name_pull_errors_and_scheduling(self):
        """Scheduling and image-pull reasons are read; ContainerCreating is no reason."""
        waiting = {"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}
        unscheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        reasons = outcomes.pending_reasons(
            pod("Pending", containerStatuses=[waiting], conditions=[unscheduled])
        )
        assert reasons == ["Unschedulable", "ErrImagePull: not found"]
        creating = {"state": {"waiting": {"reason": "ContainerCreating"}}}
        assert outcomes.pending_reasons(pod("Pending", containerStatuses=[creating])) == []

    def test_pod_start_on_running_or_deleted(self):
        """A running pod is a start; a pod seen and then gone is a deletion."""
        seen: set[str] = set()
        assert outcomes.pod_start({"p-Pending": pod("Pending")}, seen) is None
        started = outcomes.pod_start({"p-Running": pod("Running")}, set())
        assert started == outcomes.PodStart("p-Running", True)
        assert outcomes.pod_start({}, seen) == outcomes.PodStart("p-Pending", False)

    def test_job_end_reads_conditions(self):
        """Complete and Failed conditions end the wait; a missing Job is gone."""
        failed = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
        job = {"metadata": {"name": "j"}, "status": {"conditions": [failed]}}
        assert outcomes.job_end({"j": job}, "j") == outcomes.JobEnd("failed", "DeadlineExceeded")
        assert outcomes.job_end({}, "j") == outcomes.JobEnd("gone")
        assert outcomes.job_end({"j": {"status": {}}}, "j") is None

    def test_exit_code_of_the_flow_container(self):
        """The flow container's terminated exit code, None while it runs."""
        terminated = {"name": "flowyard", "state": {"terminated": {"exitCode": 3}}}
        assert outcomes.exit_code(pod("Failed", containerStatuses=[terminated])) == 3
        assert outcomes.exit_code(pod("Running")) is None

    def test_admission_refusal_is_the_newest_failed_create(self):
        """Only FailedCreate Warnings count; the newest one's message is the reason."""

        def event(reason: str, message: str, stamp: str, kind: str = "Warning") -> dict:
            return {"type": kind, "reason": reason, "message": message, "lastTimestamp": stamp}

        events = [
            event("FailedCreate", "old", "2026-01-01T00:00:00Z"),
            event("FailedCreate", "new", "2026-01-01T00:00:05Z"),
            event("SuccessfulCreate", "fine", "2026-01-01T00:00:09Z", kind="Normal"),
        ]
        assert outcomes.admission_refusal(events) == "new"
        assert outcomes.admission_refusal(events[2:]) is None

    def test_only_a_quota_others_use_up_is_waited_for(self):
        """A quota used up by other pods frees as they end; a request beyond the whole
        quota, a resource the quota requires left out, or another refusal never does."""
        from flowyard.workers.kubernetes.quota import quantity, waits_for_quota

        def exceeded(requested: str, used: str, limited: str) -> str:
            return (
                'Error creating: pods "j-1" is forbidden: exceeded quota: q, '
                f"requested: {requested}, used: {used}, limited: {limited}"
            )

        assert waits_for_quota(
            exceeded("limits.memory=512Mi", "limits.memory=768Mi", "limits.memory=1Gi")
        )
        assert waits_for_quota(
            exceeded("cpu=500m,memory=1Gi", "cpu=1600m,memory=1Gi", "cpu=2,memory=4Gi")
        )
        assert not waits_for_quota(
            exceeded("limits.memory=2Gi", "limits.memory=0", "limits.memory=1Gi")
        )
        assert not waits_for_quota(exceeded("cpu=3", "cpu=0", "cpu=2500m"))
        assert not waits_for_quota("failed quota: q: must specify limits.memory for: flowyard")
        assert not waits_for_quota('violates PodSecurity "restricted:latest": …')
        assert (quantity("1.5Gi"), quantity("250m"), quantity("lots")) == (1.5 * 2**30, 0.25, None)

    def test_hopeless_pending_reasons(self):
        """A root image under runAsNonRoot or an invalid image name is hopeless; a missing
        Secret (it may yet be created) or a pull back-off is not."""
        root = "CreateContainerConfigError: container has runAsNonRoot and image will run as root"
        assert outcomes.hopeless(["ImagePullBackOff", root]) == root
        assert outcomes.hopeless(["InvalidImageName: bad"]) == "InvalidImageName: bad"
        secret = 'CreateContainerConfigError: secret "s" not found'
        assert outcomes.hopeless([secret, "ErrImagePull: not found"]) is None

    def test_pod_failure_names_oom_kill_and_eviction(self):
        """OOMKilled (the flow's container) and Evicted (the pod) are named; an ordinary
        error exit is not a pod failure."""
        oom = {
            "name": "flowyard",
            "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
        }
        assert "OOMKilled" in (outcomes.pod_failure(pod("Failed", containerStatuses=[oom])) or "")
        evicted = pod("Failed", reason="Evicted", message="low on memory")
        assert outcomes.pod_failure(evicted) == "the pod was evicted (low on memory)"
        error = {"name": "flowyard", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}
        assert outcomes.pod_failure(pod("Failed", containerStatuses=[error])) is None

    def test_log_timestamps_compare_as_strings(self):
        """Nanosecond timestamps with their zeros trimmed still order correctly."""
        assert sortable("2026-01-01T00:00:00.5Z") > sortable("2026-01-01T00:00:00.123456789Z")
        assert sortable("2026-01-01T00:00:01Z") > sortable("2026-01-01T00:00:00.999Z")


def found(worker: str = "old", end: outcomes.JobEnd | None = None) -> adoption.FoundJob:
    return adoption.FoundJob("j", "default", "r1", worker, end, "tok")


def flow_run(state: StateType, worker: str | None = "old") -> s.FlowRun:
    return s.FlowRun.model_validate(
        {
            "id": "r1",
            "name": "n",
            "flow_id": "f",
            "flow_name": "f",
            "deployment_id": None,
            "deployment_name": None,
            "pool_name": "k8s",
            "queue_name": "default",
            "parameters": {},
            "job_variables": {},
            "state": {"type": state, "name": state.value, "timestamp": "2026-01-01T00:00:00Z"},
            "scheduled_time": "2026-01-01T00:00:00Z",
            "start_time": None,
            "end_time": None,
            "worker_name": worker,
            "infrastructure_id": None,
            "created": "2026-01-01T00:00:00Z",
        }
    )


class TestAdoptionDecisions:
    @pytest.mark.parametrize(
        ("job", "run", "online", "action"),
        [
            (found(), flow_run(StateType.RUNNING), {"old"}, adoption.Action.LEAVE),
            (found("me"), flow_run(StateType.RUNNING, "me"), {"me"}, adoption.Action.ADOPT),
            (found(), None, set(), adoption.Action.CLEAN_UP),
            (found("me"), flow_run(StateType.FAILED, "me"), {"me"}, adoption.Action.LEAVE),
            (found(), flow_run(StateType.COMPLETED), set(), adoption.Action.CLEAN_UP),
            (found(), flow_run(StateType.PENDING, "new"), set(), adoption.Action.CLEAN_UP),
            (found(), flow_run(StateType.SCHEDULED, None), set(), adoption.Action.CLEAN_UP),
            (
                found(end=outcomes.JobEnd("failed", "BackoffLimitExceeded")),
                flow_run(StateType.RUNNING),
                set(),
                adoption.Action.CRASH,
            ),
            (found(), flow_run(StateType.RUNNING), set(), adoption.Action.ADOPT),
        ],
    )
    def test_decisions(self, job, run, online, action):
        """Left to a live worker; cleaned up when done or stale; crashed; else adopted."""
        assert adoption.decide(job, run, online=online, me="me")[0] is action

    def test_found_job_reads_labels_status_and_token(self):
        """The run, the full worker name, the Job's end and the claim token are read."""
        document = {
            "metadata": {
                "name": "j",
                "namespace": "ns",
                "labels": {"flowyard.io/flow-run-id": "r1", "flowyard.io/worker": "w-short"},
                "annotations": {"flowyard.io/worker": "w full"},
            },
            "spec": {
                "template": {
                    "spec": {
                        "containers": [{"env": [{"name": "FLOWYARD_CLAIM_TOKEN", "value": "tok"}]}]
                    }
                }
            },
            "status": {"conditions": [{"type": "Complete", "status": "True"}]},
        }
        job = adoption.found_job(document)
        assert job == adoption.FoundJob(
            "j", "ns", "r1", "w full", outcomes.JobEnd("complete"), "tok"
        )
        assert adoption.found_job({"metadata": {"name": "other"}}) is None
