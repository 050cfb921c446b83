-- Rename or move a file, fenced: its name, folder and updated_at change only if it exists and the lease's fence has not
-- passed (by Redis's clock).
-- KEYS[1] meta   ARGV[1] not after (unix µs)   ARGV[2..] field, value, ...
-- Reply: 'ok' | 'late' | 'not_found'
--! include: time
local meta = KEYS[1]
if now_us > tonumber(ARGV[1]) then return 'late' end
if redis.call('EXISTS', meta) == 0 then return 'not_found' end
redis.call('HSET', meta, unpack(ARGV, 2))
return 'ok'
