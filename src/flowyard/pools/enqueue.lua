-- enqueue.lua: add runs to a queue unless already there (ZADD NX); wake the pool if any is new.
--
-- KEYS[1] ready ZSET of the queue
-- ARGV[1] wake channel, then score_1, run_1, score_2, run_2, ...
--
-- Returns the number of runs newly added.

local added = redis.call('ZADD', KEYS[1], 'NX', unpack(ARGV, 2))
if added > 0 then
  redis.call('PUBLISH', ARGV[1], 'enqueue')
end
return added
