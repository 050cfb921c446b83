-- Set or clear a user's quota overrides; the quota hash goes when it holds nothing any more.
-- KEYS[1] quota   KEYS[2] held
-- ARGV[1] limit ('' the default)   ARGV[2] largest file ('' the default)
-- Reply: {limit, max_file, used, reserved} as they were read after the change
for i, field in ipairs({'limit', 'max_file'}) do
  if ARGV[i] == '' then redis.call('HDEL', KEYS[1], field) else redis.call('HSET', KEYS[1], field, ARGV[i]) end
end
local q = redis.call('HMGET', KEYS[1], 'limit', 'max_file', 'used', 'reserved')
if not q[1] and not q[2] and (tonumber(q[3]) or 0) == 0 and (tonumber(q[4]) or 0) == 0
   and redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
end
return q
