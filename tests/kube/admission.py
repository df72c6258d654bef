"""What the emulated API server's admission refuses a Job's pod for, with the real messages.

A real cluster's Job controller creates each pod through admission; a refused pod never
exists, and the controller records a ``FailedCreate`` Warning Event on the Job with the
refusal (``Error creating: pods "…" is forbidden: …``). The checks here are the ones a
platform team meets most: Pod Security ``restricted`` enforced on a namespace, a
ResourceQuota on ``limits.memory`` (the pods of the namespace not yet ended count against
it), a LimitRange maximum per container, and a service
account that does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

_UNITS = {"": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}


def memory_bytes(quantity: str) -> int:
    """A memory quantity (``512Mi``, ``1G``, ``1000``) in bytes; the units we use only."""
    match = re.fullmatch(r"(\d+)([kMG]i?|Ki)?", quantity)
    if match is None:
        raise ValueError(f"unsupported quantity {quantity!r}")
    return int(match[1]) * _UNITS[match[2] or ""]


@dataclass
class Admission:
    """The admission rules of the emulated cluster (none but service accounts by default)."""

    restricted: set[str] = field(default_factory=set)  # namespaces enforcing "restricted"
    memory_quota: dict[str, str] = field(default_factory=dict)  # namespace -> limits.memory
    memory_max: dict[str, str] = field(default_factory=dict)  # namespace -> LimitRange max
    service_accounts: set[tuple[str, str]] = field(default_factory=set)  # extra (ns, name)

    def refusal(
        self, namespace: str, pod: str, spec: Obj, used: list[Obj] | None = None
    ) -> str | None:
        """Why admission refuses the pod ``pod`` with ``spec`` (None: admitted); ``used``:
        the specs of the namespace's pods not yet ended, which count against the quota."""
        checks = (
            self._service_account(namespace, spec),
            self._quota(namespace, spec, used or []),
            self._limit_range(namespace, spec),
            self._pod_security(namespace, spec),
        )
        why = next((c for c in checks if c), None)
        return f'pods "{pod}" is forbidden: {why}' if why else None

    def _service_account(self, namespace: str, spec: Obj) -> str | None:
        name = spec.get("serviceAccountName") or "default"
        if name == "default" or (namespace, name) in self.service_accounts:
            return None
        return (
            f"error looking up service account {namespace}/{name}: "
            f'serviceaccount "{name}" not found'
        )

    def _quota(self, namespace: str, spec: Obj, used: list[Obj]) -> str | None:
        quota = self.memory_quota.get(namespace)
        if quota is None:
            return None
        limits = [_memory_limit(c) for c in spec.get("containers") or []]
        if any(limit is None for limit in limits):
            return "failed quota: flowyard-quota: must specify limits.memory for: flowyard"
        asked = sum(memory_bytes(limit) for limit in limits if limit)
        taken = sum(_pod_memory(other) for other in used)
        if asked + taken <= memory_bytes(quota):
            return None
        return (
            f"exceeded quota: flowyard-quota, requested: limits.memory={_mebibytes(asked)}, "
            f"used: limits.memory={_mebibytes(taken)}, limited: limits.memory={quota}"
        )

    def _limit_range(self, namespace: str, spec: Obj) -> str | None:
        most = self.memory_max.get(namespace)
        if most is None:
            return None
        for container in spec.get("containers") or []:
            limit = _memory_limit(container)
            if limit and memory_bytes(limit) > memory_bytes(most):
                return f"maximum memory usage per Container is {most}, but limit is {limit}"
        return None

    def _pod_security(self, namespace: str, spec: Obj) -> str | None:
        if namespace not in self.restricted:
            return None
        problems = restricted_violations(spec)
        if not problems:
            return None
        return 'violates PodSecurity "restricted:latest": ' + ", ".join(problems)


def restricted_violations(spec: Obj) -> list[str]:
    """What Pod Security "restricted" finds wrong with a pod spec (its four container
    rules; the pod's securityContext counts for runAsNonRoot and seccompProfile)."""
    pod_context = spec.get("securityContext") or {}
    found: dict[str, list[str]] = {}
    for container in spec.get("containers") or []:
        context = container.get("securityContext") or {}
        name = container.get("name", "")
        if context.get("allowPrivilegeEscalation") is not False:
            found.setdefault("allowPrivilegeEscalation != false", []).append(name)
        if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
            found.setdefault("unrestricted capabilities", []).append(name)
        if not context.get("runAsNonRoot", pod_context.get("runAsNonRoot")):
            found.setdefault("runAsNonRoot != true", []).append(name)
        seccomp = context.get("seccompProfile") or pod_context.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            found.setdefault("seccompProfile", []).append(name)
    return [f"{rule} (containers {', '.join(map(repr, names))})" for rule, names in found.items()]


def _pod_memory(spec: Obj) -> int:
    limits = (_memory_limit(c) for c in spec.get("containers") or [])
    return sum(memory_bytes(limit) for limit in limits if limit)


def _mebibytes(size: int) -> str:
    return f"{size // 1024**2}Mi" if size % 1024**2 == 0 else str(size)


def _memory_limit(container: Obj) -> str | None:
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return str(limit) if limit is not None else None
