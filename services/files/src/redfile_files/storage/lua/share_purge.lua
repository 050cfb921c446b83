-- Remove share links and every recipient of a file at once (the file is gone).
-- KEYS[1] the file's shares   KEYS[2] the file's recipients   KEYS[3..] the share keys to remove (files:{<id>}:share:<sid>)
-- ARGV[1..] their share ids, in the order of KEYS[3..]
-- Reply: {{share id, token_sha256, owner, ...}, {recipient row's field, value, ...}, shares still listed}
local out = {}
for i, sid in ipairs(ARGV) do
  local k = KEYS[i + 2]
  local h = redis.call('HMGET', k, 'token_sha256', 'owner')
  table.insert(out, sid); table.insert(out, h[1] or ''); table.insert(out, h[2] or '')
  redis.call('UNLINK', k)
  redis.call('HDEL', KEYS[1], sid)
end
local rows = redis.call('HGETALL', KEYS[2])  -- the caller finds each row's username (storage.recipient_rows)
redis.call('UNLINK', KEYS[2])
local left = redis.call('HLEN', KEYS[1])
if left == 0 then redis.call('UNLINK', KEYS[1]) end
return {out, rows, left}
