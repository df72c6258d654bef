"""Whether a pod refused by a ResourceQuota may still be created: a pure reading of the
refusal's message.

Kubernetes' Job controller does not give up on a refused pod: it tries again with a
backoff, and the pod is created once the namespace's quota has room (other pods ended).
So does a Prefect Kubernetes worker's run: it waits for its pod up to the pod timeout.
A quota used up by other pods is therefore a wait (up to ``pod_watch_timeout_seconds``,
with the refusal in the run's logs and in the message if the time runs out), not a crash.
Only a pod that asks for more than the whole quota, or that omits a resource the quota
requires, can never be created: that refusal is final.

The admission message reads ``exceeded quota: NAME, requested: R=Q[,…], used: R=Q[,…],
limited: R=Q[,…]``.
"""

from __future__ import annotations

import re

_EXCEEDED = re.compile(
    r"exceeded quota: [^,]+, requested: (?P<requested>.*?), used: .*?, limited: (?P<limited>.*)$"
)
_PAIR = re.compile(r"([a-z0-9./-]+)=([0-9.]+[a-zA-Z]*)")
_SUFFIX = {
    "": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
}  # fmt: skip


def quantity(text: str) -> float | None:
    """A Kubernetes quantity (``500m``, ``2Gi``, ``1.5``) as a number; None if unreadable."""
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text)
    if match is None or match[2] not in _SUFFIX:
        return None
    try:
        return float(match[1]) * _SUFFIX[match[2]]
    except ValueError:
        return None


def waits_for_quota(refusal: str) -> bool:
    """True when the refusal is a quota used up by others, which frees as their pods end:
    every resource asked for fits in the quota's limit on its own."""
    match = _EXCEEDED.search(refusal)
    if match is None:
        return False
    limited = dict(_PAIR.findall(match["limited"]))
    for resource, asked in _PAIR.findall(match["requested"]):
        need, most = quantity(asked), quantity(limited.get(resource, ""))
        if need is None or most is None or need > most:
            return False
    return True
