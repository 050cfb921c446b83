-- Reserve bytes for an upload against its owner's quota, in one step (no interleaving can pass the limit).
-- KEYS[1] quota   KEYS[2] held   KEYS[3] due
-- ARGV[1] id   ARGV[2] bytes   ARGV[3] 'new' (an upload not yet held) | 'grow' (one holding a reservation)
-- ARGV[4] default quota   ARGV[5] default largest file   ARGV[6] '1': take a lease   ARGV[7] the lease's span (µs)
-- Reply: {'ok'} | {'ok', lease score, now (µs)} | {'exists'} | {'gone'} | {'busy'} (charged: completing)
--        | {'too_large', largest file} | {'over_quota', limit, used, reserved}
--! include: ledger
local quota, held, due = KEYS[1], KEYS[2], KEYS[3]
local id, n, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local kind, cur = parse(redis.call('HGET', held, id))
if mode == 'new' then
  if kind then return {'exists'} end
else
  if not kind then return {'gone'} end
  if kind == 'c' then return {'busy'} end
end
local q = redis.call('HMGET', quota, 'limit', 'max_file', 'used', 'reserved')
local limit = tonumber(q[1]) or tonumber(ARGV[4])
local max_file = tonumber(q[2]) or tonumber(ARGV[5])
local used, reserved = tonumber(q[3]) or 0, tonumber(q[4]) or 0
if cur + n > max_file then return {'too_large', max_file} end
if used + reserved + n > limit then return {'over_quota', limit, used, reserved} end
redis.call('HSET', held, id, 'r:' .. int(cur + n))
redis.call('HINCRBY', quota, 'reserved', int(n))
if ARGV[6] == '1' then
  local s, now = lease(due, id, tonumber(ARGV[7]))
  return {'ok', s, now}
end
return {'ok'}
