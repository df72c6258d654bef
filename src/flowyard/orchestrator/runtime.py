"""What every request and service of one API process shares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Request

from flowyard.orchestrator.auth import KeyCache
from flowyard.orchestrator.claims import DeploymentDocs, Marked
from flowyard.orchestrator.deployment_versions import DeploymentVersions
from flowyard.orchestrator.event_stream import EventStream
from flowyard.orchestrator.group_commit import GroupCommit
from flowyard.orchestrator.metrics import ApiMetrics
from flowyard.orchestrator.open_claims import OpenClaims
from flowyard.pools import Claim, DeploymentLimits, Leadership, PoolQueues, TagSlots, Wakeups
from flowyard.settings import Settings
from flowyard.store import Database

if TYPE_CHECKING:
    from flowyard.orchestrator.automations.action_queue import ActionQueue
    from flowyard.orchestrator.automations.cluster_actions import ClusterActionQueue
    from flowyard.orchestrator.services.materializer import Materializer
    from flowyard.orchestrator.single_creates import Create, Outcome

T = TypeVar("T")


@dataclass
class Orchestrator:
    settings: Settings
    db: Database
    queues: PoolQueues
    wakeups: Wakeups
    tag_slots: TagSlots
    leadership: Leadership
    deployment_limits: DeploymentLimits
    rebuild_needed: bool = False
    # False until the first rebuild after start renewed every lease (see the dispatcher)
    leases_trusted: bool = False
    trusted_at: float = 0.0  # when it became True (time.time())
    stopping: bool = False  # the server is shutting down: services stop
    deployment_docs: DeploymentDocs = field(default_factory=DeploymentDocs)
    deployment_versions: DeploymentVersions = field(default_factory=DeploymentVersions)
    # claims of concurrent requests: one transaction moves them all to Pending
    claim_marks: GroupCommit[tuple[list[Claim], str], Marked] = field(default_factory=GroupCommit)
    # single run creates of concurrent requests: one transaction writes them all
    run_creates: GroupCommit[Create, Outcome] = field(default_factory=GroupCommit)
    metrics: ApiMetrics = field(default_factory=ApiMetrics)
    open_claims: OpenClaims = field(default_factory=OpenClaims)  # long-polls in flight
    materializer: Materializer | None = None  # the scheduler's own process (set at start)
    key_cache: KeyCache = field(default_factory=KeyCache)
    # log batches take turns: at most one holds or waits for the store's write lock, so a
    # heartbeat or claim waits for one batch at most, never for a queue of them
    log_writes: asyncio.Lock = field(default_factory=asyncio.Lock)
    run_token_key: bytes = b""  # signs run tokens (api/run_tokens.py); set once at start
    event_stream: EventStream = field(init=False)  # set when the app starts
    action_queue: ActionQueue | ClusterActionQueue = field(init=False)  # RQ, or ours on a cluster

    def begin_stopping(self) -> None:
        """The server is stopping: services end their loops, and long-polls (claims, event
        follows, UI streams) answer now with what they have, so requests drain at once."""
        self.stopping = True
        self.wakeups.wake_all()
        self.event_stream.wake_followers()

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking store work off the event loop."""
        return await anyio.to_thread.run_sync(fn, *args)


async def get_orchestrator(request: Request) -> Orchestrator:
    """Async on purpose: FastAPI would run a plain function in its thread pool."""
    orchestrator: Orchestrator = request.app.state.orchestrator
    return orchestrator


Orch = Annotated[Orchestrator, Depends(get_orchestrator)]
"""The request's orchestrator, as a FastAPI dependency."""
