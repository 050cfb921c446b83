--! include: time
-- Take a place for one check in one scope of an attempt, or say why not (the keys of one scope: one slot).
-- A locking scope: refused ('locked') when its failures reached its limit; refused ('busy') while its
-- failures plus checks in flight reached it (checks end within milliseconds, or free their place when their
-- hold runs out); else it holds a place.  A slowing scope takes no place: refused ('slowed') when its failures
-- reached its ceiling and the attempt's client still waits out the delay its last failure set (the cooldown
-- key lives that long), else admitted.
-- KEYS[1] the scope's failures (string counter)   KEYS[2] a locking scope's checks in flight (sorted set:
--         attempt id -> unix s until which it holds its place), or a slowing scope's client cooldown (string)
-- ARGV[1] attempt id   ARGV[2] hold (s)   ARGV[3] the scope's limit   ARGV[4] its kind: 'lock' or 'slow'
-- Reply: {'ok'} | {'busy'} | {'locked', seconds until its window ends (<= 0: no TTL)}
--        | {'slowed', seconds the client still waits}
local failures = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[3])
if ARGV[4] == 'slow' then
  if failures >= limit and KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then
    return {'slowed', math.max(redis.call('TTL', KEYS[2]), 1)}
  end
  return {'ok'}
end
if failures >= limit then return {'locked', redis.call('TTL', KEYS[1])} end
local clock = now_us / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', clock)
if failures + redis.call('ZCARD', KEYS[2]) >= limit then return {'busy'} end
redis.call('ZADD', KEYS[2], clock + tonumber(ARGV[2]), ARGV[1])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
return {'ok'}
