-- The global index's byte count (files:{all}:bytes), deleted when it reaches 0 so nothing is left behind.
--! exports: add_bytes
local function add_bytes(bytes, d)
  if d ~= 0 and redis.call('INCRBY', bytes, string.format('%.0f', d)) <= 0 then redis.call('DEL', bytes) end
end
