-- task_release.lua: end the claim of a background run, if the token still holds it.
--
-- KEYS[1] leases ZSET   KEYS[2] claims HASH
-- ARGV[1] run id   ARGV[2] claim token
-- Returns 1 when the claim was ended, 0 when another claim (or none) holds the run.

local record = redis.call('HGET', KEYS[2], ARGV[1])
if record and cjson.decode(record).token == ARGV[2] then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
return 0
