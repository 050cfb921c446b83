-- Remove an upload at once, fenced: its hash goes and its part table becomes its tombstone (the chunks still to
-- delete, in slots of their own: the caller deletes them, then the tombstone; the sweep does if it cannot).
-- KEYS[1] upload   KEYS[2] parts   KEYS[3] gone
-- ARGV[1] owner   ARGV[2] not after (unix µs)
-- Reply: {'ok'} | {'late'} | {'not_found'} (no upload of this owner)
--! include: time
--! include: tombstone
if now_us > tonumber(ARGV[2]) then return {'late'} end
local u = redis.call('HMGET', KEYS[1], 'owner', 'layout')
if not u[1] or u[1] ~= ARGV[1] then return {'not_found'} end
bury(KEYS[2], KEYS[3], u[2], u[1])
redis.call('UNLINK', KEYS[1])
return {'ok'}
