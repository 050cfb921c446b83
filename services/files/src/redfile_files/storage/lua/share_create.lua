-- Create a share link in its file's slot, only while the file exists; it ends with the file's expiry.
-- KEYS[1] share   KEYS[2] the file's shares   KEYS[3] meta
-- ARGV[1] share id   ARGV[2] created_at   ARGV[3..] the share's field, value, ...
-- Reply: 'ok' | 'missing' (no such file)
if redis.call('EXISTS', KEYS[3]) == 0 then return 'missing' end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local exp = tonumber(redis.call('HGET', KEYS[3], 'expires_ts') or '0') or 0
if exp > 0 then redis.call('EXPIREAT', KEYS[1], exp); redis.call('EXPIREAT', KEYS[2], exp) end
return 'ok'
