-- task_claim.lua: claim due background task runs of several tasks, in the order given.
--
-- KEYS[1] leases ZSET (run -> lease expiry)   KEYS[2] claims HASH (run -> JSON record)
-- KEYS[2 + i] ready ZSET of task i (run -> time queued)
-- ARGV[1] now   ARGV[2] lease expiry   ARGV[3] worker name
-- ARGV[3 + i] task key i (i = 1..#KEYS-2), then one fresh token per run that may be taken
--
-- A run still holding a claim (queued again by the store sweep while it was being claimed)
-- is dropped from its queue, never claimed twice.
-- Returns {run, token, task key, ...} for each run taken.

local leases, claims = KEYS[1], KEYS[2]
local now, expiry, worker = ARGV[1], ARGV[2], ARGV[3]
local n = #KEYS - 2
local tokens = {}
for j = 4 + n, #ARGV do
  table.insert(tokens, ARGV[j])
end

local taken = {}
local used = 0
for i = 1, n do
  if used >= #tokens then
    break
  end
  local ready, key = KEYS[2 + i], ARGV[3 + i]
  local due = redis.call('ZRANGEBYSCORE', ready, '-inf', now, 'LIMIT', 0, #tokens - used)
  for _, run in ipairs(due) do
    redis.call('ZREM', ready, run)
    if redis.call('HEXISTS', claims, run) == 0 then
      used = used + 1
      local token = tokens[used]
      redis.call('ZADD', leases, expiry, run)
      redis.call('HSET', claims, run, cjson.encode({token = token, key = key, worker = worker}))
      table.insert(taken, run)
      table.insert(taken, token)
      table.insert(taken, key)
    end
  end
end
return taken
