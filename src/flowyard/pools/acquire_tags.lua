-- acquire_tags.lua: take `occupy` slots of each tag's concurrency limit for a holder, all or none.
--
-- KEYS[i] slots ZSET of tag i (slot member -> lease expiry)
-- ARGV[1] now   ARGV[2] lease expiry   ARGV[3] occupy   ARGV[3 + j] the holder's slot members
-- (as many as it occupies)   ARGV[3 + occupy + i] limit of tag i
--
-- Expired leases are dropped first, so a holder that died frees its slots by itself.
-- A holder already in a tag's slots keeps them (and their leases are renewed).
-- Returns 0 and the first tag's index that is full, or 1 when every slot was taken.

local now, expiry, occupy = ARGV[1], ARGV[2], tonumber(ARGV[3])
local first = ARGV[4]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local limit = tonumber(ARGV[3 + occupy + i])
  if not redis.call('ZSCORE', key, first) and redis.call('ZCARD', key) + occupy > limit then
    return {0, i}
  end
end
for _, key in ipairs(KEYS) do
  for j = 1, occupy do
    redis.call('ZADD', key, expiry, ARGV[3 + j])
  end
end
return {1, 0}
