-- Convert one name row of a file's recipients (username -> created_at, as stored before account ids)
-- into an account row, or drop it; only if the row still holds what the caller read.
-- KEYS[1] the file's recipients
-- ARGV[1] the name row's field (a username)   ARGV[2] its value as read
-- ARGV[3] the account id that holds the name now ('' : drop the row)   ARGV[4] that account's username
-- Reply: 'ok' | 'changed' (the row is gone or holds something else: nothing written)
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 'changed' end
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end
return 'ok'
