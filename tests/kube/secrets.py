"""Secrets of the emulated API server, and how the kubelet reads them into a container.

The API server keeps a Secret's values base64-encoded under ``data`` (``stringData`` given
on create is merged in, as the real one does). Before a container starts, the kubelet
resolves each ``valueFrom.secretKeyRef`` of its ``env`` from the Secrets of the pod's
namespace; a missing Secret or key (not ``optional``) is a ``CreateContainerConfigError``
with the real kubelet's message.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]


class ContainerConfigError(Exception):
    """A container's configuration names a Secret or key that does not exist (yet)."""


def values(secret: Obj) -> dict[str, str]:
    """A Secret's values in clear: ``data`` decoded, then ``stringData`` over it."""
    decoded = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    return {**decoded, **(secret.get("stringData") or {})}


def stored(secret: Obj) -> Obj:
    """The Secret as the API server stores it: every value base64-encoded under ``data``."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in values(secret).items()}
    kept = {k: v for k, v in secret.items() if k != "stringData"}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", **kept, "data": encoded}


def resolve_env(env: list[Obj], namespace: str, read: Callable[[str], Obj | None]) -> list[Obj]:
    """``env`` with every ``secretKeyRef`` replaced by its value; ``read`` finds a Secret."""
    resolved = []
    for variable in env:
        ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
        if ref is None:
            resolved.append(variable)
            continue
        secret = read(ref["name"])
        found = values(secret) if secret is not None else {}
        if ref["key"] in found:
            resolved.append({"name": variable["name"], "value": found[ref["key"]]})
        elif not ref.get("optional"):
            if secret is None:
                raise ContainerConfigError(f'secret "{ref["name"]}" not found')
            raise ContainerConfigError(
                f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}"
            )
    return resolved
