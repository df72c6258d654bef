-- sync_pool.lua: replace a pool's whole configuration, dropping the queues it no longer has.
--
-- KEYS[1] config HASH, then the ready and slots ZSETs of every queue being removed
-- ARGV[1] version the caller read   ARGV[2] new version   ARGV[3] wake channel
-- then field_1, value_1, field_2, value_2, ... of the new configuration
--
-- Returns 1 when written, 0 when the configuration changed since the caller read it.

local config = KEYS[1]
if (redis.call('HGET', config, 'version') or '') ~= ARGV[1] then
  return 0
end
redis.call('DEL', unpack(KEYS))
redis.call('HSET', config, 'version', ARGV[2], unpack(ARGV, 4))
redis.call('PUBLISH', ARGV[3], 'config')
return 1
