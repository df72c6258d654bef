-- claim.lua: take due runs from a pool's queues, atomically, in strict priority order,
-- within the pool's, each queue's and each deployment's concurrency limit.
--
-- KEYS[1] config HASH     KEYS[2] pool slots ZSET    KEYS[3] leases ZSET    KEYS[4] claims HASH
-- KEYS[5] run deployments HASH    KEYS[6] deployment slots ZSET    KEYS[7] deployment limits HASH
-- then for queue i = 1..n, in priority order:
--   KEYS[6 + 2i] ready ZSET of queue i              KEYS[7 + 2i] slots ZSET of queue i
-- ARGV[1] layout version the caller built KEYS from
-- ARGV[2] horizon: runs scored <= horizon are due (now + prefetch)
-- ARGV[3] max runs to take   ARGV[4] lease expiry   ARGV[5] worker   ARGV[6] token prefix
-- then for queue i: ARGV[4 + 3i] name, ARGV[5 + 3i] paused field, ARGV[6 + 3i] limit field
--
-- A deployment's limit is "N" (a run over it waits) or "N:cancel" (a run over it is taken
-- out of its queue and returned with the token '!' for the caller to cancel). Its slots
-- are members "deployment:run" of one ZSET (all scored 0), counted by prefix.
--
-- Returns {'stale'} when the layout changed, else
-- {'ok', next_due or '', run_1, queue_1, token_1, run_2, ...}.

local config, pool_slots, leases, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local run_deployments, deployment_slots, deployment_limits = KEYS[5], KEYS[6], KEYS[7]
if (redis.call('HGET', config, 'version') or '') ~= ARGV[1] then
  return {'stale'}
end
local result = {'ok', ''}
if redis.call('HGET', config, 'paused') == '1' then
  return result
end

local horizon, max_runs = ARGV[2], tonumber(ARGV[3])
local expiry, worker, prefix = ARGV[4], ARGV[5], ARGV[6]
-- at most this many waiting runs are looked at per queue past those held back by a limit
local SCAN = math.max(100, 10 * max_runs)

-- Free slots under a limit (absent = max_runs, i.e. unlimited for this call).
local function room(limit, held_key)
  if not limit then return max_runs end
  return tonumber(limit) - redis.call('ZCARD', held_key)
end

-- Looked up once: a pool with no deployment limit pays nothing per run for them.
local any_deployment_limit = redis.call('EXISTS', deployment_limits) == 1

-- 'take', 'wait' or 'cancel' for a run of deployment ``dep`` (nil: no deployment)
local function deployment_verdict(dep)
  if not dep or not any_deployment_limit then return 'take' end
  local limit = redis.call('HGET', deployment_limits, dep)
  if not limit then return 'take' end
  local n, mode = string.match(limit, '^(%d+):?(%a*)$')
  local held = redis.call('ZLEXCOUNT', deployment_slots, '[' .. dep .. ':', '[' .. dep .. ';')
  if held < tonumber(n) then return 'take' end
  if mode == 'cancel' then return 'cancel' end
  return 'wait'
end

local pool_room = room(redis.call('HGET', config, 'limit'), pool_slots)
local taken, next_due = 0, nil

for i = 1, (#KEYS - 7) / 2 do
  local ready, queue_slots = KEYS[6 + 2 * i], KEYS[7 + 2 * i]
  local name, paused_field, limit_field = ARGV[4 + 3 * i], ARGV[5 + 3 * i], ARGV[6 + 3 * i]
  if redis.call('HGET', config, paused_field) ~= '1' then
    local queue_room = room(redis.call('HGET', config, limit_field), queue_slots)
    local want = math.min(max_runs - taken, pool_room - taken, queue_room)
    local skipped, scanned = 0, 0
    while want > 0 and scanned < SCAN do
      local page = redis.call('ZRANGEBYSCORE', ready, '-inf', horizon, 'LIMIT', skipped, want)
      if #page == 0 then break end
      for _, run in ipairs(page) do
        scanned = scanned + 1
        local dep = redis.call('HGET', run_deployments, run)
        local verdict = deployment_verdict(dep)
        if verdict == 'wait' then
          skipped = skipped + 1
        else
          redis.call('ZREM', ready, run)
          redis.call('HDEL', run_deployments, run)
          -- A run already held was enqueued again while in flight: its holder decides its fate.
          if verdict == 'cancel' then
            table.insert(result, run)
            table.insert(result, name)
            table.insert(result, '!')
          elseif redis.call('HEXISTS', claims, run) == 0 then
            taken = taken + 1
            want = want - 1
            local token = prefix .. '.' .. taken
            redis.call('ZADD', pool_slots, expiry, run)
            redis.call('ZADD', queue_slots, expiry, run)
            redis.call('ZADD', leases, expiry, run)
            if dep then redis.call('ZADD', deployment_slots, 0, dep .. ':' .. run) end
            redis.call('HSET', claims, run,
              cjson.encode({queue = name, token = token, worker = worker, deployment = dep or ''}))
            table.insert(result, run)
            table.insert(result, name)
            table.insert(result, token)
          end
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
