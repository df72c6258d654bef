"""Pure checks of a Job manifest before it is sent: names, labels, required fields, quantities.

Not the API server's whole validation, but the mistakes a job variable or a custom
manifest makes most often, each reported with the path of the field at fault, so that a
bad manifest ends the run Crashed with a clear reason and nothing is created. Values of
environment variables never appear in a message (they may be secrets).
"""

from __future__ import annotations

import re
from typing import Any

from flowyard.errors import InvalidInput
from flowyard.workers.kubernetes.variables import DNS_LABEL, DNS_SUBDOMAIN, QUANTITY, SECRET_KEY

LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
RESTART_POLICIES = ("Never", "OnFailure")
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")


class ManifestError(InvalidInput):
    """Raised when a Job manifest would be refused by the API server (or make no sense)."""


def check_manifest(manifest: dict[str, Any]) -> None:
    """Raise ``ManifestError`` listing every problem found in ``manifest``."""
    problems = manifest_problems(manifest)
    if problems:
        raise ManifestError("invalid Kubernetes Job manifest: " + "; ".join(problems))


def manifest_problems(manifest: dict[str, Any]) -> list[str]:
    """Every problem found, as ``path: what is wrong``."""
    problems: list[str] = []
    if manifest.get("apiVersion") != "batch/v1" or manifest.get("kind") != "Job":
        problems.append("apiVersion/kind: must be batch/v1 Job")
    metadata = _mapping(manifest, "metadata", problems)
    problems += _dns(metadata.get("name"), "metadata.name", DNS_LABEL, 63)
    problems += _dns(metadata.get("namespace"), "metadata.namespace", DNS_LABEL, 63)
    problems += _metadata(metadata, "metadata")
    spec = _mapping(manifest, "spec", problems)
    problems += _job_spec(spec)
    return problems


def _job_spec(spec: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    for key, minimum in (("backoffLimit", 0), ("ttlSecondsAfterFinished", 0)):
        problems += _integer(spec.get(key), f"spec.{key}", minimum)
    problems += _integer(spec.get("activeDeadlineSeconds"), "spec.activeDeadlineSeconds", 1)
    template = _mapping(spec, "template", problems, "spec")
    problems += _metadata(template.get("metadata") or {}, "spec.template.metadata")
    pod = _mapping(template, "spec", problems, "spec.template")
    return problems + _pod_spec(pod, "spec.template.spec")


def _pod_spec(pod: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    if pod.get("restartPolicy") not in RESTART_POLICIES:
        problems.append(f"{path}.restartPolicy: a Job's pod needs Never or OnFailure")
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        problems.append(f"{path}.containers: at least one container is required")
        containers = []
    for index, container in enumerate(containers):
        problems += _container(container, f"{path}.containers[{index}]")
    account = pod.get("serviceAccountName")
    if account is not None:
        problems += _dns(account, f"{path}.serviceAccountName", DNS_SUBDOMAIN, 253)
    for key, value in (pod.get("nodeSelector") or {}).items():
        problems += _label(key, value, f"{path}.nodeSelector")
    for index, secret in enumerate(pod.get("imagePullSecrets") or []):
        name = secret.get("name") if isinstance(secret, dict) else None
        problems += _dns(name, f"{path}.imagePullSecrets[{index}].name", DNS_SUBDOMAIN, 253)
    for index, toleration in enumerate(pod.get("tolerations") or []):
        problems += _toleration(toleration, f"{path}.tolerations[{index}]")
    return problems


def _container(container: Any, path: str) -> list[str]:  # noqa: C901 - one check per field
    if not isinstance(container, dict):
        return [f"{path}: must be a mapping"]
    problems = _dns(container.get("name"), f"{path}.name", DNS_LABEL, 63)
    if not isinstance(container.get("image"), str) or not container["image"].strip():
        problems.append(f"{path}.image: is required")
    command = container.get("command")
    if command is not None and not (
        isinstance(command, list) and all(isinstance(x, str) for x in command)
    ):
        problems.append(f"{path}.command: must be a list of strings")
    for index, variable in enumerate(container.get("env") or []):
        name = variable.get("name") if isinstance(variable, dict) else None
        if not isinstance(name, str) or not ENV_NAME.match(name):
            problems.append(f"{path}.env[{index}].name: {name!r} is not a valid variable name")
        elif "value" in variable and not isinstance(variable["value"], str):
            problems.append(f"{path}.env[{index}] ({name}): the value must be a string")
        elif isinstance(source := variable.get("valueFrom"), dict):
            ref = source.get("secretKeyRef")
            problems += _secret_ref(ref, f"{path}.env[{index}].valueFrom.secretKeyRef")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource, quantity in (resources.get(kind) or {}).items():
            if not isinstance(quantity, str | int | float) or not re.match(QUANTITY, str(quantity)):
                problems.append(
                    f"{path}.resources.{kind}.{resource}: {quantity!r} is not a quantity "
                    "(e.g. 500m, 1, 256Mi, 2Gi)"
                )
    return problems


def _metadata(metadata: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    for key, value in (metadata.get("labels") or {}).items():
        problems += _label(key, value, f"{path}.labels")
    for key, value in (metadata.get("annotations") or {}).items():
        problems += _key(key, f"{path}.annotations")
        if not isinstance(value, str):
            problems.append(f"{path}.annotations[{key}]: the value must be a string")
    return problems


def _label(key: Any, value: Any, path: str) -> list[str]:
    problems = _key(key, path)
    if not isinstance(value, str) or (value and (len(value) > 63 or not LABEL_NAME.match(value))):
        problems.append(
            f"{path}[{key}]: {value!r} is not a label value (at most 63 characters: "
            "letters, digits, '-', '_', '.', starting and ending alphanumeric)"
        )
    return problems


def _key(key: Any, path: str) -> list[str]:
    """A label or annotation key: ``[prefix/]name``, prefix a DNS subdomain."""
    if not isinstance(key, str):
        return [f"{path}: key {key!r} must be a string"]
    prefix, _, name = key.rpartition("/")
    problems = []
    if prefix and (len(prefix) > 253 or not re.match(DNS_SUBDOMAIN, prefix)):
        problems.append(f"{path}[{key}]: the prefix {prefix!r} is not a DNS subdomain")
    if len(name) > 63 or not LABEL_NAME.match(name):
        problems.append(f"{path}[{key}]: {name!r} is not a valid key name")
    return problems


def _toleration(toleration: Any, path: str) -> list[str]:
    if not isinstance(toleration, dict):
        return [f"{path}: must be a mapping"]
    problems = []
    if toleration.get("operator", "Equal") not in TOLERATION_OPERATORS:
        problems.append(f"{path}.operator: must be Exists or Equal")
    if toleration.get("effect", "") not in TOLERATION_EFFECTS:
        problems.append(f"{path}.effect: must be NoSchedule, PreferNoSchedule or NoExecute")
    return problems


def _dns(value: Any, path: str, pattern: str, limit: int) -> list[str]:
    if not isinstance(value, str) or not value:
        return [f"{path}: is required"]
    if len(value) > limit or not re.match(pattern, value):
        what = "DNS-1123 label" if pattern == DNS_LABEL else "DNS-1123 subdomain"
        return [
            f"{path}: {value!r} is not a {what} (lowercase letters, digits and '-', "
            f"at most {limit} characters)"
        ]
    return []


def _secret_ref(ref: Any, path: str) -> list[str]:
    """A Secret's name and key, when a variable is read from one."""
    if ref is None:
        return []
    if not isinstance(ref, dict):
        return [f"{path}: must be a mapping"]
    problems = _dns(ref.get("name"), f"{path}.name", DNS_SUBDOMAIN, 253)
    key = ref.get("key")
    if not isinstance(key, str) or len(key) > 253 or not re.match(SECRET_KEY, key):
        problems.append(f"{path}.key: {key!r} is not a Secret key (letters, digits, '-', '_', '.')")
    return problems


def _integer(value: Any, path: str, minimum: int) -> list[str]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        return [f"{path}: must be an integer >= {minimum}"]
    return []


def _mapping(
    parent: dict[str, Any], key: str, problems: list[str], path: str = ""
) -> dict[str, Any]:
    value = parent.get(key)
    if isinstance(value, dict):
        return value
    problems.append(f"{path + '.' if path else ''}{key}: is required (a mapping)")
    return {}
