-- Give an attempt's places up.  A failure is counted in every scope in the same step (a scope's window
-- starts at its first failure); a scope marked to be forgotten loses its failures.
-- KEYS[2i-1] scope i's failures (string counter)   KEYS[2i] scope i's checks in flight (sorted set)
-- ARGV[1] attempt id   ARGV[2] '1': the attempt failed   ARGV[3] window (s)   ARGV[3+i] '1': forget scope i's failures
-- Reply: {n, ...}: each scope's failures in its window, after this
local failed = ARGV[2] == '1'
local window = tonumber(ARGV[3])
local counts = {}
for i = 1, #KEYS / 2 do
  local key = KEYS[2 * i - 1]
  redis.call('ZREM', KEYS[2 * i], ARGV[1])
  if ARGV[3 + i] == '1' then
    redis.call('DEL', key)
    counts[i] = 0
  elseif failed then
    counts[i] = redis.call('INCRBY', key, 1)
    if counts[i] == 1 then redis.call('EXPIRE', key, window) end
  else
    counts[i] = tonumber(redis.call('GET', key) or '0')
  end
end
return counts
