-- The ids whose due time has come, by Redis's clock.
-- KEYS[1] due   ARGV[1] at most this many
-- Reply: {id, score, id, score, ...}
--! include: ledger
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(now_us()), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
