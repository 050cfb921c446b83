-- Drop ids from the global index, and their sizes from the byte count.
-- KEYS[1] files:{all}:files   KEYS[2] files:{all}:sizes   KEYS[3] files:{all}:bytes
-- ARGV[1..] ids
-- Reply: 1
--! include: global
local index, sizes, bytes = KEYS[1], KEYS[2], KEYS[3]
local total = 0
for _, id in ipairs(ARGV) do
  redis.call('ZREM', index, id)
  local s = redis.call('HGET', sizes, id)
  if s then
    redis.call('HDEL', sizes, id)
    total = total + tonumber(s)
  end
end
add_bytes(bytes, -total)
return 1
