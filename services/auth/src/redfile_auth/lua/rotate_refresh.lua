-- Use up a refresh token and store its successor; a token already used revokes its whole family,
-- and with it the access tokens minted from the family (their denial, read by every service).
-- Every key is in the family's slot (hash tag {<family>}); the caller updates the user's families index.
-- KEYS[1] the presented token (auth:refresh:…)   KEYS[2] its successor   KEYS[3] the family (auth:family:…)
-- KEYS[4] the family's denial (rf:tokdeny:family:…)
-- ARGV[1] username   ARGV[2] family id   ARGV[3] ttl (s) of the successor and the family
-- ARGV[4] ttl (s) of the denial: as long as an access token of the family can live
-- Reply: {'ok', token version} | {'reuse'} (the family is revoked) | {'revoked'} (no family) | {'invalid'}
local rec = redis.call('HMGET', KEYS[1], 'username', 'family', 'version', 'used')
if not rec[1] or rec[1] ~= ARGV[1] or rec[2] ~= ARGV[2] then return {'invalid'} end
if redis.call('EXISTS', KEYS[3]) == 0 then return {'revoked'} end
if rec[4] ~= '0' then
  redis.call('DEL', KEYS[3])
  redis.call('SET', KEYS[4], '1', 'EX', ARGV[4])
  return {'reuse'}
end
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('HSET', KEYS[2], 'username', ARGV[1], 'family', ARGV[2], 'version', rec[3], 'used', '0')
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
return {'ok', rec[3]}
