--! include: time
-- Take a place for one check in every scope of an attempt, or say why not.  Refused ('locked') when a
-- scope's failures reached its limit; refused ('busy') while a scope's failures plus checks in flight did
-- (checks end within milliseconds, or free their place when their hold runs out).  Places are all or none.
-- KEYS[2i-1] scope i's failures (string counter)   KEYS[2i] scope i's checks in flight (sorted set:
--            attempt id -> unix s until which it holds its place)
-- ARGV[1] attempt id   ARGV[2] hold (s)   ARGV[2+i] scope i's limit
-- Reply: {'ok'} | {'busy'} | {'locked', seconds until the last locked scope's window ends (<= 0: no TTL),
--        i, ...: the locked scopes' numbers}
local hold = tonumber(ARGV[2])
local scopes = #KEYS / 2
local locked = {'locked', 0}
for i = 1, scopes do
  local failures = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  if failures >= tonumber(ARGV[2 + i]) then
    locked[2] = math.max(locked[2], redis.call('TTL', KEYS[2 * i - 1]))
    locked[#locked + 1] = i
  end
end
if #locked > 2 then return locked end
local clock = now_us / 1000000
for i = 1, scopes do
  redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', clock)
  local failures = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  if failures + redis.call('ZCARD', KEYS[2 * i]) >= tonumber(ARGV[2 + i]) then return {'busy'} end
end
for i = 1, scopes do
  redis.call('ZADD', KEYS[2 * i], clock + hold, ARGV[1])
  redis.call('EXPIRE', KEYS[2 * i], hold)
end
return {'ok'}
