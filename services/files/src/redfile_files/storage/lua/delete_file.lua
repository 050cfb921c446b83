-- Remove a file at once, fenced: its meta goes and its part table becomes its tombstone (the chunks still to
-- delete, in slots of their own: the caller deletes them, then the tombstone; the sweep does if it cannot).  With an
-- expected folder and name, only if they are still the file's (the names entry the caller recorded in flight).
-- KEYS[1] meta   KEYS[2] parts   KEYS[3] gone
-- ARGV[1] not after (unix µs)   ARGV[2] only this owner's ('' any)   ARGV[3] expected folder ('' unchecked)
-- ARGV[4] expected name
-- Reply: {'ok', owner, size} | {'late'} | {'not_found'} | {'changed'}
--! include: time
--! include: tombstone
if now_us > tonumber(ARGV[1]) then return {'late'} end
local m = redis.call('HMGET', KEYS[1], 'owner', 'size', 'layout', 'folder', 'name')
if not m[1] or (ARGV[2] ~= '' and m[1] ~= ARGV[2]) then return {'not_found'} end
if ARGV[3] ~= '' and ((m[4] or '/') ~= ARGV[3] or m[5] ~= ARGV[4]) then return {'changed'} end
bury(KEYS[2], KEYS[3], m[3], m[1])
redis.call('UNLINK', KEYS[1])
return {'ok', m[1], tonumber(m[2])}
