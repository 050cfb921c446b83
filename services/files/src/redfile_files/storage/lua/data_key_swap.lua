-- Compare-and-set of a file's (or upload's) wrapped data key: re-wrapped only if it still holds what was read.
-- KEYS[1] meta or upload   ARGV[1] the wrapped key read   ARGV[2] its replacement
-- Reply: 'ok' | 'changed' | 'gone' (no hash, or no data key: nothing is created)
local current = redis.call('HGET', KEYS[1], 'dek')
if not current then return 'gone' end
if current ~= ARGV[1] then return 'changed' end
redis.call('HSET', KEYS[1], 'dek', ARGV[2])
return 'ok'
