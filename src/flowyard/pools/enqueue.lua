-- enqueue.lua: add runs to a queue unless already there (ZADD NX); wake the pool if any is new.
--
-- KEYS[1] ready ZSET of the queue    KEYS[2] run deployments HASH
-- ARGV[1] wake channel, ARGV[2] number of runs n, then score_i, run_i (i = 1..n), then
-- run, deployment pairs for the runs that belong to a deployment (its concurrency limit)
--
-- Returns the number of runs newly added.

local n = tonumber(ARGV[2])
local added = redis.call('ZADD', KEYS[1], 'NX', unpack(ARGV, 3, 2 + 2 * n))
if #ARGV > 2 + 2 * n then
  redis.call('HSET', KEYS[2], unpack(ARGV, 3 + 2 * n))
end
if added > 0 then
  redis.call('PUBLISH', ARGV[1], 'enqueue')
end
return added
