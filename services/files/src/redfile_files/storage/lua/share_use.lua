-- The one atomic decision of a link download: the link exists and is for this token, its file exists, it
-- is neither expired nor used up, and (reserve) one download is counted -- before a byte is sent.
-- A transfer is counted once: a counted download gives its client a resume allowance (the file's size
-- in bytes, for ARGV[6] seconds) that ranges not starting at byte 0 spend instead of counting again,
-- even once the link is used up; without enough allowance such a range counts like any download.
-- KEYS[1] share   KEYS[2] meta   KEYS[3] this client's resume allowance on this link
-- ARGV[1] token_sha256   ARGV[2] '1': count a download
-- ARGV[3] the range's first byte (0: from the start)   ARGV[4] its length   ARGV[5] the file's size
-- ARGV[6] the resume window in seconds (0: no allowance; every download counts)
-- ARGV[7] '1': a download request (without ARGV[2]: a used-up link still opens for a client whose allowance lasts)
-- Reply: {'ok', downloads, 'counted'|'resumed'|''} | {'missing'} | {'expired'} | {'used_up'}
local s = redis.call('HMGET', KEYS[1], 'token_sha256', 'expires_ts', 'max_downloads', 'downloads')
if not s[1] or s[1] ~= ARGV[1] then return {'missing'} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'missing'} end
local now = tonumber(redis.call('TIME')[1])
local exp = tonumber(s[2]) or 0
if exp > 0 and now >= exp then return {'expired'} end
local max = tonumber(s[3]) or 0
local n = tonumber(s[4]) or 0
local start, len = tonumber(ARGV[3]) or 0, tonumber(ARGV[4]) or 0
local left = tonumber(redis.call('GET', KEYS[3]) or '-1') or -1
if ARGV[2] ~= '1' then
  if max > 0 and n >= max and (ARGV[7] ~= '1' or left < 0) then return {'used_up'} end
  return {'ok', n, ''}
end
if start > 0 and left >= len then
  redis.call('INCRBY', KEYS[3], -len)  -- keeps its TTL: the window runs from the counted download
  return {'ok', n, 'resumed'}
end
if max > 0 and n >= max then return {'used_up'} end
n = redis.call('HINCRBY', KEYS[1], 'downloads', 1)
local window = tonumber(ARGV[6]) or 0
if window > 0 then redis.call('SET', KEYS[3], ARGV[5], 'EX', window) end
return {'ok', n, 'counted'}
