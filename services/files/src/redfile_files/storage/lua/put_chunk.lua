-- Put one chunk of an upload in place: its bytes were SET under a staging key just before (the same
-- connection), and are renamed into place here, never copied through Lua.  Checks owner, index, the size
-- this index must have (sessions) or the upload's total_chunks (seed uploads), the largest file, and that a
-- chunk already at the index has the same part record (a repeat changes nothing; other bytes: conflict).
-- With a create fence (ARGV[10]) it creates a seed upload with this chunk instead.
-- KEYS[1] upload   KEYS[2] parts   KEYS[3] c:<index>   KEYS[4] meta   KEYS[5] the staging key
-- ARGV[1] owner   ARGV[2] index   ARGV[3] part record   ARGV[4] size   ARGV[5] ttl (s)   ARGV[6] now (ISO 8601)
-- ARGV[7] chunk key prefix   ARGV[8] largest file   ARGV[9] total_chunks the client claims ('' none)
-- ARGV[10] create: not after (unix µs; '' for an existing upload)   ARGV[11..] create: field, value, ...
-- Reply: {'stored'|'unchanged', chunks, received bytes, deadline} | {'late'} | {'exists'} | {'not_found'}
--        | {'bad_index', total} | {'bad_size', expected} | {'total_mismatch', total} | {'conflict'}
--        | {'too_large', received} | {'staging_lost'}.  Anything but 'stored' deletes the staging key.
--! include: time
--! include: deadline
local upload, parts, chunk, meta, staging = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local owner, index, part, size = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local ttl, now_iso, chunk_prefix, max_file = tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local claimed_total, create = ARGV[9], ARGV[10] ~= ''

local function put()
  local received, deadline, old = 0, now + ttl, false
  if create then
    if now_us > tonumber(ARGV[10]) then return {'late'} end
    if redis.call('EXISTS', upload) == 1 or redis.call('EXISTS', meta) == 1 then return {'exists'} end
  else
    local u = redis.call('HMGET', upload, 'owner', 'total_chunks', 'received_bytes', 'deadline', 'mode', 'total_size', 'chunk_size')
    if not u[1] or u[1] ~= owner then return {'not_found'} end
    local total = tonumber(u[2])
    if u[5] == 'session' then
      if index >= total then return {'bad_index', total} end
      local expected = tonumber(u[7])
      if index == total - 1 then expected = tonumber(u[6]) - expected * (total - 1) end
      if size ~= expected then return {'bad_size', expected} end
    elseif claimed_total ~= u[2] then
      return {'total_mismatch', total}
    end
    received, deadline = tonumber(u[3]), tonumber(u[4])
    old = redis.call('HGET', parts, index)
    if old and redis.call('EXISTS', chunk) == 0 then
      -- the part's bytes are gone (evicted): take the new copy instead
      received = received - tonumber(string.match(old, '^(%d+):'))
      old = false
    end
  end
  if old then
    if old ~= part then return {'conflict'} end
  elseif received + size > max_file then
    return {'too_large', received}
  end
  -- new bytes, but no staged copy of them (a staged SET Redis refused, or a key evicted): nothing changes.
  -- Checked only here, so a script retried after it stored the chunk still finds it unchanged.
  if not old and redis.call('EXISTS', staging) == 0 then return {'staging_lost'} end
  if create then
    redis.call('HSET', upload, 'received_bytes', 0, 'deadline', deadline, unpack(ARGV, 11))
  end
  deadline = push_deadline(upload, parts, chunk_prefix, deadline, ttl, now)
  if not old then
    redis.call('RENAME', staging, chunk)
    redis.call('EXPIREAT', chunk, deadline)
    redis.call('HSET', parts, index, part)
    received = received + size
    redis.call('HSET', upload, 'received_bytes', received)
  end
  redis.call('HSET', upload, 'updated_at', now_iso)
  redis.call('EXPIREAT', upload, deadline)
  redis.call('EXPIREAT', parts, deadline)
  return {old and 'unchanged' or 'stored', redis.call('HLEN', parts), received, deadline}
end

local result = put()
if result[1] ~= 'stored' then redis.call('UNLINK', staging) end
return result
