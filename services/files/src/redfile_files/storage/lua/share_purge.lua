-- Remove every share link and recipient of a file at once (the file is gone).
-- KEYS[1] the file's shares   KEYS[2] the file's recipients
-- ARGV[1] the share key prefix (files:{<id>}:share:)
-- Reply: {{share id, token_sha256, owner, ...}, {recipient row's field, value, ...}} of what was removed
local out = {}
for _, sid in ipairs(redis.call('HKEYS', KEYS[1])) do
  local k = ARGV[1] .. sid
  local h = redis.call('HMGET', k, 'token_sha256', 'owner')
  table.insert(out, sid); table.insert(out, h[1] or ''); table.insert(out, h[2] or '')
  redis.call('UNLINK', k)
end
local rows = redis.call('HGETALL', KEYS[2])  -- the caller finds each row's username (storage.recipient_rows)
redis.call('UNLINK', KEYS[1], KEYS[2])
return {out, rows}
