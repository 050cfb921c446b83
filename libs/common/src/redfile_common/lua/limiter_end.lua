-- Give an attempt's places up.  A failure is counted in every scope in the same step (a scope's window
-- starts at its first failure); a scope marked to be forgotten loses its failures.  A failure that leaves
-- a slowing scope at or past its ceiling makes the attempt's client wait before its next check: the
-- cooldown key lives min(2 ^ (failures - ceiling), max delay) seconds (the longest over the slowing scopes).
-- A success that forgets a scope (the right secret) ends the client's wait.
-- KEYS[2i-1] scope i's failures (string counter)   KEYS[2i] scope i's checks in flight (sorted set)
-- KEYS[2n+1] (optional) the client's cooldown (string)
-- ARGV[1] attempt id   ARGV[2] '1': the attempt failed   ARGV[3] window (s)   ARGV[4] max delay (s)
-- ARGV[4+i] '1': forget scope i's failures   ARGV[4+n+i] scope i's limit   ARGV[4+2n+i] scope i's kind ('lock'/'slow')
-- Reply: {n, ...}: each scope's failures in its window, after this
local failed = ARGV[2] == '1'
local window = tonumber(ARGV[3])
local max_delay = tonumber(ARGV[4])
local scopes = math.floor(#KEYS / 2)
local cooldown = KEYS[2 * scopes + 1]
local counts = {}
local delay = 0
local forgot = false
for i = 1, scopes do
  local key = KEYS[2 * i - 1]
  redis.call('ZREM', KEYS[2 * i], ARGV[1])
  if ARGV[4 + i] == '1' then
    redis.call('DEL', key)
    counts[i] = 0
    forgot = true
  elseif failed then
    counts[i] = redis.call('INCRBY', key, 1)
    if counts[i] == 1 then redis.call('EXPIRE', key, window) end
    local ceiling = tonumber(ARGV[4 + scopes + i])
    if ARGV[4 + 2 * scopes + i] == 'slow' and counts[i] >= ceiling then
      delay = math.max(delay, math.min(2 ^ math.min(counts[i] - ceiling, 30), max_delay))
    end
  else
    counts[i] = tonumber(redis.call('GET', key) or '0')
  end
end
if cooldown and delay > 0 then
  redis.call('SET', cooldown, '1', 'PX', math.floor(delay * 1000))
elseif cooldown and not failed and forgot then
  redis.call('DEL', cooldown)
end
return counts
