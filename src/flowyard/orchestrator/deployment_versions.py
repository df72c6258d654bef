"""Deployments as run creates use them, loaded once per version of what they depend on.

A create needs its deployment with its flow, queue and pool: the ORM's joined load cost
about half a millisecond of CPU per group of single creates. Each group still asks the
store which version it would load, in one SQL-core row (the deployment's and its pool's
last update, and the ids and names its events and queue use); a version seen before gets
the object loaded then (detached, and only read). That stays correct with several API
replicas: any change to those rows is a new version, and so a new load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from flowyard.errors import NotFound
from flowyard.orchestrator.lookups import get_deployment
from flowyard.store import models as m

_DEPLOYMENTS = cast(Table, m.Deployment.__table__)
_FLOWS = cast(Table, m.Flow.__table__)
_QUEUES = cast(Table, m.WorkQueue.__table__)
_POOLS = cast(Table, m.WorkPool.__table__)
_VERSION = select(
    _DEPLOYMENTS.c.id,
    _DEPLOYMENTS.c.updated,
    _FLOWS.c.name,
    _QUEUES.c.id,
    _QUEUES.c.name,
    _POOLS.c.id,
    _POOLS.c.name,
    _POOLS.c.updated,
).select_from(
    _DEPLOYMENTS.outerjoin(_FLOWS, _DEPLOYMENTS.c.flow_id == _FLOWS.c.id)
    .outerjoin(_QUEUES, _DEPLOYMENTS.c.queue_id == _QUEUES.c.id)
    .outerjoin(_POOLS, _QUEUES.c.pool_id == _POOLS.c.id)
)


@dataclass
class DeploymentVersions:
    """Loaded deployments by version; at most ``limit`` kept (then it starts afresh)."""

    limit: int = 1000
    _loaded: dict[tuple[Any, ...], m.Deployment] = field(default_factory=dict)

    def get(self, session: Session, ref: str) -> m.Deployment:
        """The deployment ``ref`` names (an id, or ``flow name/deployment name``), as
        ``get_deployment`` loads it; ``NotFound`` when there is none."""
        version = session.execute(_VERSION.where(_DEPLOYMENTS.c.id == ref)).first()
        if version is None and "/" in ref:
            flow_name, name = ref.rsplit("/", 1)
            named = _VERSION.where(_FLOWS.c.name == flow_name, _DEPLOYMENTS.c.name == name)
            version = session.execute(named).first()
        if version is None:
            raise NotFound(f"deployment {ref!r} not found")
        key = tuple(version)
        dep = self._loaded.get(key)
        if dep is None:
            if len(self._loaded) >= self.limit:
                self._loaded.clear()
            dep = self._loaded[key] = get_deployment(session, version[0])
        return dep
