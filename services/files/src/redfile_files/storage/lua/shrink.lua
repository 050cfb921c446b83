-- Give back bytes an upload reserved and did not use (never below 0, never a charge).
-- KEYS[1] quota   KEYS[2] held
-- ARGV[1] id   ARGV[2] bytes
-- Reply: 1 (given back) | 0 (the id holds no reservation)
--! include: ledger
local kind, x = parse(redis.call('HGET', KEYS[2], ARGV[1]))
if kind ~= 'r' then return 0 end
local y = math.max(0, x - tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], ARGV[1], 'r:' .. int(y))
redis.call('HINCRBY', KEYS[1], 'reserved', int(y - x))
return 1
