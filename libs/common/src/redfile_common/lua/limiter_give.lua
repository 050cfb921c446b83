-- Give an attempt's place in one scope up (the keys of one scope: one slot).  A failure is counted in the
-- same step (the scope's window starts at its first failure); a scope marked to be forgotten loses its
-- failures.  A failure that leaves a slowing scope at or past its ceiling makes the attempt's client wait
-- before its next check: the cooldown key lives min(2 ^ (failures - ceiling), max delay) seconds, or
-- longer if it already does.  A success that forgets any scope of the attempt (the right secret) ends the
-- client's wait.
-- KEYS[1] the scope's failures (string counter)   KEYS[2] its checks in flight (sorted set)
-- KEYS[3] (slowing scope, optional) the client's cooldown (string)
-- ARGV[1] attempt id   ARGV[2] '1': the attempt failed   ARGV[3] window (s)   ARGV[4] max delay (s)
-- ARGV[5] '1': forget this scope's failures   ARGV[6] the scope's limit   ARGV[7] its kind ('lock'/'slow')
-- ARGV[8] '1': the attempt forgets some scope (a success that ends the client's wait)
-- Reply: the scope's failures in its window, after this
local key = KEYS[1]
local cooldown = KEYS[3]
local count
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[5] == '1' then
  redis.call('DEL', key)
  count = 0
elseif ARGV[2] == '1' then
  count = redis.call('INCRBY', key, 1)
  if count == 1 then redis.call('EXPIRE', key, tonumber(ARGV[3])) end
  local ceiling = tonumber(ARGV[6])
  if cooldown and ARGV[7] == 'slow' and count >= ceiling then
    local delay = math.floor(math.min(2 ^ math.min(count - ceiling, 30), tonumber(ARGV[4])) * 1000)
    if redis.call('PTTL', cooldown) < delay then redis.call('SET', cooldown, '1', 'PX', delay) end
  end
else
  count = tonumber(redis.call('GET', key) or '0')
end
if cooldown and ARGV[2] ~= '1' and ARGV[8] == '1' then redis.call('DEL', cooldown) end
return count
