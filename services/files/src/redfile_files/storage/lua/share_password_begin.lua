-- Take a place for one password check of a share link: refused once the failures reached the limit, and
-- while failures plus checks in flight did (those end within milliseconds, or free their place at `hold`).
-- KEYS[1] pwfail   KEYS[2] pwcheck
-- ARGV[1] limit   ARGV[2] attempt id   ARGV[3] hold (s)
-- Reply: 'ok' | 'busy' | 'locked'
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local failed = tonumber(redis.call('GET', KEYS[1]) or '0')
if failed >= limit then return 'locked' end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if failed + redis.call('ZCARD', KEYS[2]) >= limit then return 'busy' end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIREAT', KEYS[2], math.ceil(now) + tonumber(ARGV[3]))
return 'ok'
