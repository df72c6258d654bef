-- claim.lua: take due runs from a pool's queues, atomically, in strict priority order.
--
-- KEYS[1] config HASH     KEYS[2] pool slots ZSET    KEYS[3] leases ZSET    KEYS[4] claims HASH
-- then for queue i = 1..n, in priority order:
--   KEYS[3 + 2i] ready ZSET of queue i              KEYS[4 + 2i] slots ZSET of queue i
-- ARGV[1] layout version the caller built KEYS from
-- ARGV[2] horizon: runs scored <= horizon are due (now + prefetch)
-- ARGV[3] max runs to take   ARGV[4] lease expiry   ARGV[5] worker   ARGV[6] token prefix
-- then for queue i: ARGV[4 + 3i] name, ARGV[5 + 3i] paused field, ARGV[6 + 3i] limit field
--
-- Returns {'stale'} when the layout changed, else
-- {'ok', next_due or '', run_1, queue_1, token_1, run_2, ...}.

local config, pool_slots, leases, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if (redis.call('HGET', config, 'version') or '') ~= ARGV[1] then
  return {'stale'}
end
local result = {'ok', ''}
if redis.call('HGET', config, 'paused') == '1' then
  return result
end

local horizon, max_runs = ARGV[2], tonumber(ARGV[3])
local expiry, worker, prefix = ARGV[4], ARGV[5], ARGV[6]

-- Free slots under a limit (absent = max_runs, i.e. unlimited for this call).
local function room(limit, held_key)
  if not limit then return max_runs end
  return tonumber(limit) - redis.call('ZCARD', held_key)
end

local pool_room = room(redis.call('HGET', config, 'limit'), pool_slots)
local taken, next_due = 0, nil

for i = 1, (#KEYS - 4) / 2 do
  local ready, queue_slots = KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  local name, paused_field, limit_field = ARGV[4 + 3 * i], ARGV[5 + 3 * i], ARGV[6 + 3 * i]
  if redis.call('HGET', config, paused_field) ~= '1' then
    local queue_room = room(redis.call('HGET', config, limit_field), queue_slots)
    local want = math.min(max_runs - taken, pool_room - taken, queue_room)
    if want > 0 then
      for _, run in ipairs(redis.call('ZRANGEBYSCORE', ready, '-inf', horizon, 'LIMIT', 0, want)) do
        redis.call('ZREM', ready, run)
        -- A run already held was enqueued again while in flight: its holder decides its fate.
        if redis.call('HEXISTS', claims, run) == 0 then
          taken = taken + 1
          local token = prefix .. '.' .. taken
          redis.call('ZADD', pool_slots, expiry, run)
          redis.call('ZADD', queue_slots, expiry, run)
          redis.call('ZADD', leases, expiry, run)
          redis.call('HSET', claims, run, cjson.encode({queue = name, token = token, worker = worker}))
          table.insert(result, run)
          table.insert(result, name)
          table.insert(result, token)
        end
      end
    end
    local later = redis.call('ZRANGEBYSCORE', ready, '(' .. horizon, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if later[2] and (next_due == nil or tonumber(later[2]) < tonumber(next_due)) then
      next_due = later[2]
    end
  end
end

result[2] = next_due or ''
return result
