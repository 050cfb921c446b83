-- Give a password check's place up; a wrong password is counted in the same step (the window starts at the
-- first failure).
-- KEYS[1] pwfail   KEYS[2] pwcheck
-- ARGV[1] attempt id   ARGV[2] '1': the password was wrong   ARGV[3] window (s)
-- Reply: the failures in the window
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '1' then return tonumber(redis.call('GET', KEYS[1]) or '0') end
local n = redis.call('INCRBY', KEYS[1], 1)
if n == 1 then redis.call('EXPIREAT', KEYS[1], tonumber(redis.call('TIME')[1]) + tonumber(ARGV[3])) end
return n
