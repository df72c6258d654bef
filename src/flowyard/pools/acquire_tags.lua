-- acquire_tags.lua: take `occupy` slots of each tag's concurrency limit for a holder, all or none.
--
-- KEYS[2i-1] slots ZSET of tag i (slot member -> lease expiry)
-- KEYS[2i]   decaying slots ZSET of tag i (slot member -> the time it has decayed)
-- ARGV[1] now   ARGV[2] lease expiry   ARGV[3] occupy   ARGV[4] "1": a rate limit (the slots
-- decay, one every ARGV[4 + occupy + n + i] seconds, instead of being held)
-- ARGV[4 + j] the holder's slot members (as many as it occupies)
-- ARGV[4 + occupy + i] limit of tag i   (n = the number of tags)
-- ARGV[4 + occupy + n + i] seconds one slot of tag i takes to decay (0: no decay)
--
-- Expired leases and decayed slots are dropped first, so a holder that died frees its
-- slots by itself. A holder already in a tag's slots keeps them (and their leases are
-- renewed). Decaying slots drain one after another, like a leaky bucket: a tag with limit
-- L and a decay of d slots a second lets L through at once, then d a second.
-- Returns {1} when every slot was taken, else {0, the first full tag's index, seconds until
-- its decaying slots make room ("-1" when held slots fill it)}.

local now, expiry, occupy = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local rate = ARGV[4] == '1'
local n = #KEYS / 2
local first = ARGV[5]
for i = 1, n do
  local held, decaying = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', held, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', decaying, '-inf', now)
  local limit = tonumber(ARGV[4 + occupy + i])
  local used = redis.call('ZCARD', held) + redis.call('ZCARD', decaying)
  local holding = not rate and redis.call('ZSCORE', held, first)
  if not holding and used + occupy > limit then
    local excess = used + occupy - limit
    local wait = '-1'
    if excess <= redis.call('ZCARD', decaying) then
      local drained = redis.call('ZRANGE', decaying, excess - 1, excess - 1, 'WITHSCORES')
      wait = tostring(tonumber(drained[2]) - now)
    end
    return {0, i, wait}
  end
end
for i = 1, n do
  if rate then
    local decaying = KEYS[2 * i]
    local every = tonumber(ARGV[4 + occupy + n + i])
    local last = redis.call('ZRANGE', decaying, -1, -1, 'WITHSCORES')
    local at = now
    if last[2] and tonumber(last[2]) > at then at = tonumber(last[2]) end
    for j = 1, occupy do
      at = at + every
      redis.call('ZADD', decaying, tostring(at), ARGV[4 + j])
    end
  else
    for j = 1, occupy do
      redis.call('ZADD', KEYS[2 * i - 1], expiry, ARGV[4 + j])
    end
  end
end
return {1}
