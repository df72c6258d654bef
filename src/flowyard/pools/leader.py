"""Which API replica runs the singleton services: a lease in Redis, renewed while held.

Every replica asks before each service step; the holder renews its lease, another takes
it only once it expired (the holder died or lost Redis). The holder answers from memory
for a third of the lease after each renewal (timed from before it asked), so its services'
steps cost one renewal per third of a lease, not a Redis call each. The services are safe
to run twice at once (every write is a compare-and-set or idempotent), so a lease that
changes hands in the middle of a step costs duplicate work, never a wrong result.
"""

from __future__ import annotations

import time
import uuid

from flowyard.pools import keys
from flowyard.pools.redis_server import Client, translated

# Renew when ours, take when free; 1 when held by us afterwards.
_HOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"""
_RESIGN = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leadership:
    """This replica's claim on the singleton services."""

    def __init__(self, redis: Client, ttl_seconds: float) -> None:
        self._redis = redis
        self.identity = uuid.uuid4().hex
        self.ttl_ms = max(1, int(ttl_seconds * 1000))
        self._hold = redis.register_script(_HOLD)
        self._resign = redis.register_script(_RESIGN)
        self._known_until = 0.0  # monotonic: held for sure until then, without asking

    async def held(self) -> bool:
        """True when this replica leads (taking or renewing the lease)."""
        asked = time.monotonic()
        if asked < self._known_until:
            return True
        with translated(self._redis):
            held = bool(await self._hold(keys=[keys.LEADER], args=[self.identity, self.ttl_ms]))
        self._known_until = asked + self.ttl_ms / 3000 if held else 0.0
        return held

    async def resign(self) -> None:
        """Give the lease up now (a clean shutdown), if it is ours."""
        self._known_until = 0.0
        with translated(self._redis):
            await self._resign(keys=[keys.LEADER], args=[self.identity])
