"""Work pools and work queues in Redis: enqueue, atomic claim, leases, slots, wake-ups.

The store is the truth about runs; this package keeps Redis as an index of what is
due in each pool and queue, which the orchestrator may rebuild at any time.
"""

from flowyard.pools.deployment_limits import DeploymentLimits
from flowyard.pools.leader import Leadership
from flowyard.pools.models import Claim, ClaimResult, QueueConfig
from flowyard.pools.queue import PoolQueues
from flowyard.pools.redis_server import ManagedRedis, connect
from flowyard.pools.tag_slots import TagSlots
from flowyard.pools.wakeups import Wakeups

__all__ = [
    "Claim",
    "ClaimResult",
    "DeploymentLimits",
    "Leadership",
    "ManagedRedis",
    "PoolQueues",
    "QueueConfig",
    "TagSlots",
    "Wakeups",
    "connect",
]
