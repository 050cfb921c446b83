-- Add an id to the global index, with its file's size when known (the byte count follows).
-- KEYS[1] files:{all}:files   KEYS[2] files:{all}:sizes   KEYS[3] files:{all}:bytes
-- ARGV[1] id   ARGV[2] score (created ms)   ARGV[3] size ('' not known: the sweep's walk fills it in)
-- Reply: 1
--! include: global
local index, sizes, bytes = KEYS[1], KEYS[2], KEYS[3]
redis.call('ZADD', index, ARGV[2], ARGV[1])
if ARGV[3] ~= '' then
  local old = redis.call('HGET', sizes, ARGV[1])
  if old ~= ARGV[3] then
    redis.call('HSET', sizes, ARGV[1], ARGV[3])
    add_bytes(bytes, tonumber(ARGV[3]) - (tonumber(old) or 0))
  end
end
return 1
