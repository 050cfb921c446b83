-- Remove a file's meta, part table and chunks at once, fenced.
-- KEYS[1] meta   KEYS[2] parts
-- ARGV[1] not after (unix µs)   ARGV[2] chunk key prefix   ARGV[3] only this owner's ('' any)
-- Reply: {'ok', owner, size} | {'late'} | {'not_found'}
--! include: time
if now_us > tonumber(ARGV[1]) then return {'late'} end
local m = redis.call('HMGET', KEYS[1], 'owner', 'total_chunks', 'size')
if not m[1] or (ARGV[3] ~= '' and m[1] ~= ARGV[3]) then return {'not_found'} end
for i = 0, tonumber(m[2]) - 1 do redis.call('UNLINK', ARGV[2] .. i) end
redis.call('UNLINK', KEYS[1], KEYS[2])
return {'ok', m[1], tonumber(m[3])}
