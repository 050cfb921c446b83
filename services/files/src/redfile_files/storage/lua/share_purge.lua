-- Remove every share link and recipient of a file at once (the file is gone).
-- KEYS[1] the file's shares   KEYS[2] the file's recipients
-- ARGV[1] the share key prefix (files:{<id>}:share:)
-- Reply: {{share id, token_sha256, owner, ...}, {recipient's username, ...}} of what was removed
local out = {}
for _, sid in ipairs(redis.call('HKEYS', KEYS[1])) do
  local k = ARGV[1] .. sid
  local h = redis.call('HMGET', k, 'token_sha256', 'owner')
  table.insert(out, sid); table.insert(out, h[1] or ''); table.insert(out, h[2] or '')
  redis.call('UNLINK', k)
end
local users = {}  -- account id -> username: the names key the inboxes
local pairs_ = redis.call('HGETALL', KEYS[2])
for i = 2, #pairs_, 2 do table.insert(users, pairs_[i]) end
redis.call('UNLINK', KEYS[1], KEYS[2])
return {out, users}
