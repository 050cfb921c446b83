-- Rename or move a file, fenced and compared: its name, folder and updated_at change only if it exists, the lease's
-- fence has not passed (by Redis's clock), and its folder and name are still the ones the caller recorded in flight
-- (a file stored before folders is in '/').
-- KEYS[1] meta   ARGV[1] not after (unix µs)   ARGV[2] expected folder   ARGV[3] expected name   ARGV[4..] field, value, ...
-- Reply: 'ok' | 'late' | 'not_found' | 'changed'
--! include: time
local meta = KEYS[1]
if now_us > tonumber(ARGV[1]) then return 'late' end
local m = redis.call('HMGET', meta, 'owner', 'folder', 'name')
if not m[1] then return 'not_found' end
if (m[2] or '/') ~= ARGV[2] or m[3] ~= ARGV[3] then return 'changed' end
redis.call('HSET', meta, unpack(ARGV, 4))
return 'ok'
