-- extend.lua: push back the lease and slot expiries of the runs still held.
--
-- KEYS[1] config HASH     KEYS[2] pool slots ZSET    KEYS[3] leases ZSET    KEYS[4] claims HASH
-- then KEYS[4 + i] slots ZSET of queue i, for every queue of the caller's layout
-- ARGV[1] layout version   ARGV[2] new expiry   ARGV[3] number of queues n
-- ARGV[3 + i] name of queue i (i = 1..n), then the run ids
--
-- Only existing members move (XX): a lease released meanwhile is not revived.
-- Returns {'stale'} when the layout is stale, else {'ok', run ids still held...}.

local config, pool_slots, leases, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local expiry, n = ARGV[2], tonumber(ARGV[3])
local slots_of = {}
for i = 1, n do
  slots_of[ARGV[3 + i]] = KEYS[4 + i]
end
local current = (redis.call('HGET', config, 'version') or '') == ARGV[1]

local held = {}
for j = 4 + n, #ARGV do
  local run = ARGV[j]
  local record = redis.call('HGET', claims, run)
  if record then
    local queue_slots = slots_of[cjson.decode(record).queue]
    if queue_slots then
      redis.call('ZADD', queue_slots, 'XX', expiry, run)
    elseif not current then
      return {'stale'}
    end
    table.insert(held, run)
  end
end

for _, run in ipairs(held) do
  redis.call('ZADD', pool_slots, 'XX', expiry, run)
  redis.call('ZADD', leases, 'XX', expiry, run)
end
table.insert(held, 1, 'ok')
return held
