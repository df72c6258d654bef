-- claim.lua: take due runs from a pool's queues, atomically, in strict priority order,
-- within the pool's, each queue's and each deployment's concurrency limit.
--
-- KEYS[1] config HASH     KEYS[2] pool slots ZSET    KEYS[3] leases ZSET    KEYS[4] claims HASH
-- KEYS[5] run deployments HASH    KEYS[6] deployment slots ZSET    KEYS[7] deployment limits HASH
-- KEYS[8] run priorities HASH    KEYS[9] answer STRING: the claim request's runs and tokens
-- then for queue i = 1..n, in priority order:
--   KEYS[7 + 3i] ready ZSET   KEYS[8 + 3i] slots ZSET   KEYS[9 + 3i] ranks HASH of queue i
-- ARGV[1] layout version the caller built KEYS from
-- ARGV[2] horizon: runs scored <= horizon are due (now + prefetch)
-- ARGV[3] max runs to take   ARGV[4] lease expiry   ARGV[5] worker   ARGV[6] token prefix
-- ARGV[7] milliseconds to keep the answer ('' : the request has no idempotency key)
-- ARGV[8] '1': a request sent again answers what the answer key holds, if anything
-- then for queue i: ARGV[5 + 4i] name, ARGV[6 + 4i] paused field, ARGV[7 + 4i] limit field,
--   ARGV[8 + 4i] fair field
--
-- Ordering within a queue. A waiting run is scored by its scheduled time (>= 0). Once
-- due, a run is *promoted*: re-scored below 0 by (its priority, its rank), so that due
-- runs are taken lowest priority number first, then by rank. Ranks are handed out in
-- the order runs become due. In a fair queue each deployment has its own rank counter,
-- started no lower than the rank last taken (the ranks HASH: 'v' highest rank taken,
-- 'top' highest rank given, 'f:D' last rank given to deployment D), so deployments take
-- turns: a burst of 10,000 runs of one deployment does not hold back another's run
-- behind all of them. Unfair queues use one counter, 'f:', for every run (FIFO by rank).
--
-- A deployment's limit is "N" (a run over it waits) or "N:cancel" (a run over it is taken
-- out of its queue and returned with the token '!' for the caller to cancel). Its slots
-- are members "deployment:run" of one ZSET (all scored 0), counted by prefix.
--
-- The answer key is the request's idempotency: the runs it took, with their tokens, as JSON
-- [[run, token], ...], kept for ARGV[7] ms; a request sent again gets them instead of more.
--
-- Returns {'stale'} when the layout changed, {'replay', answer} for a request sent again,
-- else {'ok', next_due or '', run_1, queue_1, token_1, run_2, ...}.

local config, pool_slots, leases, claims = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local run_deployments, deployment_slots, deployment_limits = KEYS[5], KEYS[6], KEYS[7]
local run_priorities, answer = KEYS[8], KEYS[9]
if (redis.call('HGET', config, 'version') or '') ~= ARGV[1] then
  return {'stale'}
end
if ARGV[8] == '1' then
  local given = redis.call('GET', answer)
  if given then return {'replay', given} end
end
local result = {'ok', ''}
if redis.call('HGET', config, 'paused') == '1' then
  return result
end

local horizon, max_runs = ARGV[2], tonumber(ARGV[3])
local expiry, worker, prefix = ARGV[4], ARGV[5], ARGV[6]
-- at most this many waiting runs are looked at per queue past those held back by a limit
local SCAN = math.max(100, 10 * max_runs)
-- promoted score = band * BAND + rank - PROMOTED, band = priority + OFFSET in [0, 8192):
-- always below 0 and an exact integer in a double
local BAND, PROMOTED, OFFSET = 2 ^ 39, 2 ^ 52, 4096
local CHUNK = 1000  -- Lua's unpack() has a limit; long lists go to Redis in chunks

-- Numbers are written as exact integers (Lua's own conversion may round large ones).
local function integer(n)
  return string.format('%.0f', n)
end

local function chunks(list, fn)
  for first = 1, #list, CHUNK do
    fn(unpack(list, first, math.min(first + CHUNK - 1, #list)))
  end
end

local function hmget(key, members)
  local values = {}
  chunks(members, function(...)
    for _, value in ipairs(redis.call('HMGET', key, ...)) do table.insert(values, value) end
  end)
  return values
end

-- Re-score the queue's runs that became due (see "Ordering" above).
local function promote(ready, ranks, fair)
  local due = redis.call('ZRANGEBYSCORE', ready, 0, horizon)
  if #due == 0 then return end
  local taken_rank = tonumber(redis.call('HGET', ranks, 'v') or '0')
  if redis.call('ZCOUNT', ready, '-inf', '(0') == 0 then
    -- nothing promoted still waits, so no deployment is ahead of another any more
    taken_rank = tonumber(redis.call('HGET', ranks, 'top') or '0')
  end
  local priorities = hmget(run_priorities, due)
  local owners = fair and hmget(run_deployments, due) or {}
  local last, top, rescored = {}, taken_rank, {}
  for j, run in ipairs(due) do
    local counter = 'f:' .. (fair and owners[j] or '')
    local rank = last[counter] or tonumber(redis.call('HGET', ranks, counter) or '0')
    rank = math.max(rank, taken_rank) + 1
    last[counter] = rank
    top = math.max(top, rank)
    local band = (tonumber(priorities[j]) or 0) + OFFSET
    table.insert(rescored, integer(band * BAND + rank - PROMOTED))
    table.insert(rescored, run)
  end
  chunks(rescored, function(...) redis.call('ZADD', ready, 'XX', ...) end)
  for counter, rank in pairs(last) do redis.call('HSET', ranks, counter, integer(rank)) end
  redis.call('HSET', ranks, 'top', integer(top), 'v', integer(taken_rank))
end

-- The rank within a promoted score.
local function rank_of(score)
  local shifted = tonumber(score) + PROMOTED
  return shifted - math.floor(shifted / BAND) * BAND
end

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
local taken, next_due, given = 0, nil, {}

for i = 1, (#KEYS - 9) / 3 do
  local ready, queue_slots, ranks = KEYS[7 + 3 * i], KEYS[8 + 3 * i], KEYS[9 + 3 * i]
  local name, paused_field = ARGV[5 + 4 * i], ARGV[6 + 4 * i]
  local limit_field, fair_field = ARGV[7 + 4 * i], ARGV[8 + 4 * i]
  if redis.call('HGET', config, paused_field) ~= '1' then
    promote(ready, ranks, redis.call('HGET', config, fair_field) == '1')
    local queue_room = room(redis.call('HGET', config, limit_field), queue_slots)
    local want = math.min(max_runs - taken, pool_room - taken, queue_room)
    local skipped, scanned, top_taken = 0, 0, nil
    while want > 0 and scanned < SCAN do
      local page = redis.call('ZRANGEBYSCORE', ready, '-inf', '(0', 'WITHSCORES', 'LIMIT', skipped, want)
      if #page == 0 then break end
      for j = 1, #page, 2 do
        local run, score = page[j], page[j + 1]
        scanned = scanned + 1
        local dep = redis.call('HGET', run_deployments, run)
        local verdict = deployment_verdict(dep)
        if verdict == 'wait' then
          skipped = skipped + 1
        else
          redis.call('ZREM', ready, run)
          redis.call('HDEL', run_deployments, run)
          redis.call('HDEL', run_priorities, run)
          top_taken = math.max(top_taken or 0, rank_of(score))
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
            table.insert(given, {run, token})
          end
        end
      end
    end
    if top_taken and top_taken > tonumber(redis.call('HGET', ranks, 'v') or '0') then
      redis.call('HSET', ranks, 'v', integer(top_taken))
    end
    local later = redis.call('ZRANGEBYSCORE', ready, '(' .. horizon, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if later[2] and (next_due == nil or tonumber(later[2]) < tonumber(next_due)) then
      next_due = later[2]
    end
  end
end

if ARGV[7] ~= '' and #given > 0 then
  redis.call('SET', answer, cjson.encode(given), 'PX', ARGV[7])
end
result[2] = next_due or ''
return result
