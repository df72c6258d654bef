-- task_extend.lua: push back the leases of the background runs still held with their token.
--
-- KEYS[1] leases ZSET   KEYS[2] claims HASH
-- ARGV[1] new expiry, then pairs: run id, claim token
-- Returns the run ids whose claim the tokens still hold.

local leases, claims = KEYS[1], KEYS[2]
local held = {}
for j = 2, #ARGV, 2 do
  local run, token = ARGV[j], ARGV[j + 1]
  local record = redis.call('HGET', claims, run)
  if record and cjson.decode(record).token == token then
    redis.call('ZADD', leases, 'XX', ARGV[1], run)
    table.insert(held, run)
  end
end
return held
