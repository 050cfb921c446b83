-- Move an upload opened before chunks spread to the spread layout at once: each recorded chunk renamed from its key
-- in the id's slot to its own key, then layout set.  Its keys span slots: such an upload exists only on the one
-- standalone Redis it was opened on (every upload a cluster holds has its layout), where that is allowed.
-- KEYS[1] upload   KEYS[2] parts   KEYS[3..2+n] the chunks' legacy keys   KEYS[3+n..2+2n] their spread keys
-- ARGV[1] n   ARGV[2] the layout to set
-- Reply: 1 (moved) | 0 (nothing to move: no such upload, or its layout is set)
local u = redis.call('HMGET', KEYS[1], 'owner', 'layout')
if not u[1] or u[2] then return 0 end
local n = tonumber(ARGV[1])
for i = 1, n do
  if redis.call('EXISTS', KEYS[2 + i]) == 1 then redis.call('RENAME', KEYS[2 + i], KEYS[2 + n + i]) end
end
redis.call('HSET', KEYS[1], 'layout', ARGV[2])
return 1
