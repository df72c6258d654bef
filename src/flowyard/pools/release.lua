-- release.lua: free a run's pool slot, queue slot, lease and claim record, then wake the pool.
--
-- KEYS[1] config HASH     KEYS[2] pool slots ZSET    KEYS[3] leases ZSET    KEYS[4] claims HASH
-- KEYS[5] deployment slots ZSET
-- then KEYS[5 + i] slots ZSET of queue i, for every queue of the caller's layout
-- ARGV[1] layout version   ARGV[2] run id   ARGV[3] wake channel   ARGV[3 + i] name of queue i
--
-- Returns 1 when released, 0 when nothing was held, -1 when the layout is stale.

local config, pool_slots, leases, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local run = ARGV[2]
local record = redis.call('HGET', claims, run)
if not record then
  return 0
end

local held = cjson.decode(record)
local queue = held.queue
local queue_slots = nil
for i = 1, #KEYS - 5 do
  if ARGV[3 + i] == queue then queue_slots = KEYS[5 + i] end
end
if queue_slots then
  redis.call('ZREM', queue_slots, run)
elseif (redis.call('HGET', config, 'version') or '') ~= ARGV[1] then
  return -1
end
-- (a queue missing from an up-to-date layout was deleted, and its slots with it)

redis.call('ZREM', pool_slots, run)
redis.call('ZREM', leases, run)
if held.deployment and held.deployment ~= '' then
  redis.call('ZREM', KEYS[5], held.deployment .. ':' .. run)
end
redis.call('HDEL', claims, run)
redis.call('PUBLISH', ARGV[3], 'release')
return 1
