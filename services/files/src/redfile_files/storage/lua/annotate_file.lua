-- Add fields to a file's meta, only while the file exists (a tus upload's metadata once it is a file).
-- KEYS[1] meta   ARGV[1..] field, value, ...
-- Reply: 1 | 0 (no such file)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
