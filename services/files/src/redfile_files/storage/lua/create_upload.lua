-- Create an upload hash, fenced: refused after its lease's fence, and for an id that exists.
-- KEYS[1] files:{<id>}:upload   KEYS[2] files:{<id>}:meta
-- ARGV[1] not after (unix µs, Redis's clock)   ARGV[2] ttl (s)   ARGV[3..] field, value, ...
-- Reply: {'ok', deadline} | {'late'} | {'exists'}
--! include: time
if now_us > tonumber(ARGV[1]) then return {'late'} end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
local deadline = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'deadline', deadline, 'received_bytes', 0, unpack(ARGV, 3))
redis.call('EXPIREAT', KEYS[1], deadline)
return {'ok', deadline}
