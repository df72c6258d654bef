-- enqueue.lua: add runs to a queue unless already there (ZADD NX); wake the pool if any is new.
--
-- KEYS[1] ready ZSET of the queue    KEYS[2] run deployments HASH    KEYS[3] run priorities HASH
-- ARGV[1] wake channel, ARGV[2] number of runs n, ARGV[3] number of deployment pairs d,
-- then score_i, run_i (i = 1..n), then d run, deployment pairs for the runs that belong to
-- a deployment (its concurrency limit, fair turns), then run, priority pairs for the runs
-- whose priority is not the default 0
--
-- Returns the number of runs newly added.

local n, d = tonumber(ARGV[2]), tonumber(ARGV[3])
local owners, priorities = 4 + 2 * n, 4 + 2 * n + 2 * d
local added = redis.call('ZADD', KEYS[1], 'NX', unpack(ARGV, 4, owners - 1))
if d > 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, owners, priorities - 1))
end
if #ARGV >= priorities then
  redis.call('HSET', KEYS[3], unpack(ARGV, priorities))
end
if added > 0 then
  redis.call('PUBLISH', ARGV[1], 'enqueue')
end
return added
