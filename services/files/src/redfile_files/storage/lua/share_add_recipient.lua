-- Share a file read-only with a user, only while the file exists; the entry ends with the file's expiry.
-- KEYS[1] the file's recipients   KEYS[2] meta
-- ARGV[1] the recipient's account id (auth's, immutable)   ARGV[2] their username (for listing and their inbox)
-- Reply: 'ok' | 'missing' (no such file)
if redis.call('EXISTS', KEYS[2]) == 0 then return 'missing' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local exp = tonumber(redis.call('HGET', KEYS[2], 'expires_ts') or '0') or 0
if exp > 0 then redis.call('EXPIREAT', KEYS[1], exp) end
return 'ok'
