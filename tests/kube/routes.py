"""The paths the emulated API server answers: Jobs, Pods, Secrets and Events, namespaced or
not, and logs."""

from __future__ import annotations

import re
from dataclasses import dataclass

ROUTE = re.compile(
    r"^/(?:apis/batch/v1|api/v1)(?:/namespaces/(?P<namespace>[^/]+))?"
    r"/(?P<resource>jobs|pods|secrets|events)(?:/(?P<name>[^/]+)(?P<log>/log)?)?/?$"
)


@dataclass(frozen=True)
class Route:
    resource: str
    namespace: str | None
    name: str | None
    log: bool

    @property
    def kind(self) -> str:
        """The resource as counted: ``jobs``, ``pods``, ``jobs/NAME``… without the name."""
        if self.log:
            return "pods/log"
        return f"{self.resource}/item" if self.name else self.resource


def route_of(path: str) -> Route | None:
    match = ROUTE.match(path)
    if match is None:
        return None
    if (match["resource"] == "jobs") != path.startswith("/apis/batch/v1"):
        return None
    return Route(match["resource"], match["namespace"], match["name"], bool(match["log"]))
