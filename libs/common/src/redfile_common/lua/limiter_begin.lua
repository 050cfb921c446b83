--! include: time
-- Take a place for one check in every locking scope of an attempt, or say why not.  Refused ('locked') when
-- a locking scope's failures reached its limit; refused ('slowed') when a slowing scope's failures reached
-- its ceiling and the attempt's client is still waiting out the delay its last failure set (the cooldown
-- key lives that long); refused ('busy') while a locking scope's failures plus checks in flight reached its
-- limit (checks end within milliseconds, or free their place when their hold runs out).  Slowing scopes
-- take no places.  Places are all or none.
-- KEYS[2i-1] scope i's failures (string counter)   KEYS[2i] scope i's checks in flight (sorted set:
--            attempt id -> unix s until which it holds its place)   KEYS[2n+1] (optional) the client's cooldown
-- ARGV[1] attempt id   ARGV[2] hold (s)   ARGV[2+i] scope i's limit   ARGV[2+n+i] scope i's kind: 'lock' or 'slow'
-- Reply: {'ok'} | {'busy'} | {'locked', seconds until the last locked scope's window ends (<= 0: no TTL),
--        i, ...: the locked scopes' numbers} | {'slowed', seconds the client still waits, i, ...: the
--        slowing scopes past their ceiling}
local hold = tonumber(ARGV[2])
local scopes = math.floor(#KEYS / 2)
local cooldown = KEYS[2 * scopes + 1]
local function failures(i) return tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0') end
local function locks(i) return ARGV[2 + scopes + i] ~= 'slow' end
local locked = {'locked', 0}
local slowed = {'slowed', 0}
for i = 1, scopes do
  if failures(i) >= tonumber(ARGV[2 + i]) then
    if locks(i) then
      locked[2] = math.max(locked[2], redis.call('TTL', KEYS[2 * i - 1]))
      locked[#locked + 1] = i
    else
      slowed[#slowed + 1] = i
    end
  end
end
if #locked > 2 then return locked end
if #slowed > 2 and cooldown and redis.call('EXISTS', cooldown) == 1 then
  slowed[2] = math.max(redis.call('TTL', cooldown), 1)
  return slowed
end
local clock = now_us / 1000000
for i = 1, scopes do
  if locks(i) then
    redis.call('ZREMRANGEBYSCORE', KEYS[2 * i], '-inf', clock)
    if failures(i) + redis.call('ZCARD', KEYS[2 * i]) >= tonumber(ARGV[2 + i]) then return {'busy'} end
  end
end
for i = 1, scopes do
  if locks(i) then
    redis.call('ZADD', KEYS[2 * i], clock + hold, ARGV[1])
    redis.call('EXPIRE', KEYS[2 * i], hold)
  end
end
return {'ok'}
