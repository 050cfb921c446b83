-- The one atomic decision of a link download: the link exists and is for this token, its file exists, it
-- is neither expired nor used up, and (reserve) one download is counted -- before a byte is sent.
-- KEYS[1] share   KEYS[2] meta
-- ARGV[1] token_sha256   ARGV[2] '1': count a download
-- Reply: {'ok', downloads} | {'missing'} | {'expired'} | {'used_up'}
local s = redis.call('HMGET', KEYS[1], 'token_sha256', 'expires_ts', 'max_downloads', 'downloads')
if not s[1] or s[1] ~= ARGV[1] then return {'missing'} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'missing'} end
local now = tonumber(redis.call('TIME')[1])
local exp = tonumber(s[2]) or 0
if exp > 0 and now >= exp then return {'expired'} end
local max = tonumber(s[3]) or 0
local n = tonumber(s[4]) or 0
if max > 0 and n >= max then return {'used_up'} end
if ARGV[2] == '1' then n = redis.call('HINCRBY', KEYS[1], 'downloads', 1) end
return {'ok', n}
