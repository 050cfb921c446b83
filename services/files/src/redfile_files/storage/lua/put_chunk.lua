-- Record one chunk of an upload: its bytes are in their own slot already (put there just before, only if absent),
-- this records their part.  Checks owner, index, the size this index must have (sessions) or the upload's
-- total_chunks (seed uploads), the largest file, the layout the chunk was written in, and that a chunk already
-- at the index has the same part record (a repeat changes nothing; other bytes: conflict).
-- With a create fence (ARGV[9]) it creates a seed upload with this chunk instead.
-- KEYS[1] upload   KEYS[2] parts   KEYS[3] meta
-- ARGV[1] owner   ARGV[2] index   ARGV[3] part record   ARGV[4] size   ARGV[5] ttl (s)   ARGV[6] now (ISO 8601)
-- ARGV[7] largest file   ARGV[8] total_chunks the client claims ('' none)
-- ARGV[9] create: not after (unix µs; '' for an existing upload)   ARGV[10] the layout the chunk was written in
-- ARGV[11..] create: field, value, ...
-- Reply: {'stored'|'unchanged', chunks, received bytes, deadline, {index, record, ...} when the deadline moved}
--        | {status, value, recorded} for a refusal: 'late' | 'exists' | 'not_found' | 'layout' (value: the upload's)
--        | 'bad_index' (total) | 'bad_size' (expected) | 'total_mismatch' (total) | 'conflict' | 'too_large' (received);
--        recorded: 1 when the part table holds this very record at this index (its chunk is not the caller's to delete)
--! include: time
--! include: deadline
local upload, parts, meta = KEYS[1], KEYS[2], KEYS[3]
local owner, index, part, size = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local ttl, now_iso, max_file = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local claimed_total, create, layout = ARGV[8], ARGV[9] ~= '', ARGV[10]

local function put()
  local received, deadline, old = 0, now + ttl, false
  if create then
    if now_us > tonumber(ARGV[9]) then return {'late'} end
    if redis.call('EXISTS', upload) == 1 or redis.call('EXISTS', meta) == 1 then return {'exists'} end
  else
    local u = redis.call('HMGET', upload, 'owner', 'total_chunks', 'received_bytes', 'deadline', 'mode', 'total_size',
      'chunk_size', 'layout')
    if not u[1] or u[1] ~= owner then return {'not_found'} end
    if (u[8] or '1') ~= layout then return {'layout', u[8] or '1'} end
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
  end
  if old then
    if old ~= part then return {'conflict'} end
  elseif received + size > max_file then
    return {'too_large', received}
  end
  if create then
    redis.call('HSET', upload, 'received_bytes', 0, 'deadline', deadline, unpack(ARGV, 11))
  end
  local pushed
  deadline, pushed = push_deadline(upload, deadline, ttl, now)
  if not old then
    redis.call('HSET', parts, index, part)
    received = received + size
    redis.call('HSET', upload, 'received_bytes', received)
  end
  redis.call('HSET', upload, 'updated_at', now_iso)
  redis.call('EXPIREAT', upload, deadline)
  redis.call('EXPIREAT', parts, deadline)
  return {old and 'unchanged' or 'stored', redis.call('HLEN', parts), received, deadline,
    pushed and redis.call('HGETALL', parts) or {}}
end

local result = put()
if result[1] == 'stored' or result[1] == 'unchanged' then return result end
return {result[1], result[2] or 0, redis.call('HGET', parts, index) == part and 1 or 0}
