-- Remove every key of an upload, fenced.
-- KEYS[1] upload   KEYS[2] parts
-- ARGV[1] owner   ARGV[2] not after (unix µs)   ARGV[3] chunk key prefix
-- Reply: {'ok'} | {'late'} | {'not_found'} (no upload of this owner)
--! include: time
if now_us > tonumber(ARGV[2]) then return {'late'} end
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner or owner ~= ARGV[1] then return {'not_found'} end
for _, i in ipairs(redis.call('HKEYS', KEYS[2])) do redis.call('UNLINK', ARGV[3] .. i) end
redis.call('UNLINK', KEYS[1], KEYS[2])
return {'ok'}
