-- acquire_tags.lua: take one slot of each tag's concurrency limit for a holder, all or none.
--
-- KEYS[i] slots ZSET of tag i (holder -> lease expiry)
-- ARGV[1] now   ARGV[2] lease expiry   ARGV[3] holder   ARGV[3 + i] limit of tag i
--
-- Expired leases are dropped first, so a holder that died frees its slots by itself.
-- A holder already in a tag's slots keeps it (and its lease is renewed).
-- Returns 0 and the first tag's index that is full, or 1 when every slot was taken.

local now, expiry, holder = ARGV[1], ARGV[2], ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if not redis.call('ZSCORE', key, holder) and redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then
    return {0, i}
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, expiry, holder)
end
return {1, 0}
