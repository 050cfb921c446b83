-- Append bytes to a tus upload at an offset: the one record of a tus upload's bytes, whose chunks are in their
-- own slots already (put there just before, only if absent).  Checks the owner, that it is a tus upload (a final
-- one only with allow_final), the layout the chunks were written in, that its offset is the expected one and the
-- length rules (set once; no byte past it nor past the largest file); then records each chunk's part, sets the
-- offset and pushes the deadline.
-- KEYS[1] upload   KEYS[2] parts
-- ARGV[1] owner   ARGV[2] expected offset   ARGV[3] new offset   ARGV[4] length to set ('' none)   ARGV[5] ttl (s)
-- ARGV[6] now (ISO 8601)   ARGV[7] the layout the chunks were written in   ARGV[8] largest file
-- ARGV[9] '1': a final upload may take it   ARGV[10] n segments, then 2 ARGVs each: index, part record
-- Reply: {'ok', deadline, 1 if this set the length else 0, {index, record, ...} when the deadline moved,
--         {index, record, ...} of the records this replaced (a tail written again)}
--        | {status, value, {recorded, ...}} for a refusal: 'not_found' | 'final' | 'layout' (value: the upload's)
--        | 'mismatch' (offset) | 'length_conflict' (length) | 'too_long' (length) | 'too_large';
--        recorded[i]: 1 when the part table holds segment i's very record at its index
--! include: time
--! include: deadline
local upload, parts = KEYS[1], KEYS[2]
local owner, expected, new_offset = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, now_iso, layout, max_file = tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local allow_final, n = ARGV[9] == '1', tonumber(ARGV[10])

local function append()
  local u = redis.call('HMGET', upload, 'owner', 'mode', 'received_bytes', 'total_size', 'chunk_size', 'deadline', 'tus_concat',
    'layout')
  if not u[1] or u[1] ~= owner or u[2] ~= 'tus' then return {'not_found'} end
  if not allow_final and u[7] and string.sub(u[7], 1, 5) == 'final' then return {'final'} end
  if (u[8] or '1') ~= layout then return {'layout', u[8] or '1'} end
  local offset = tonumber(u[3])
  if offset ~= expected then return {'mismatch', offset} end
  local length = nil
  if u[4] and u[4] ~= '' then length = tonumber(u[4]) end
  local set_length = false
  if ARGV[4] ~= '' then
    local wanted = tonumber(ARGV[4])
    if length and length ~= wanted then return {'length_conflict', length} end
    if wanted < new_offset then return {'too_long', wanted} end
    if wanted > max_file then return {'too_large'} end
    set_length = not length
    length = wanted
  end
  if length and new_offset > length then return {'too_long', length} end
  if new_offset > max_file then return {'too_large'} end
  local deadline, pushed = push_deadline(upload, tonumber(u[6]), ttl, now)
  local replaced = {}
  for i = 0, n - 1 do
    local index, record = ARGV[11 + i * 2], ARGV[12 + i * 2]
    local old = redis.call('HGET', parts, index)
    if old and old ~= record then table.insert(replaced, index); table.insert(replaced, old) end
    redis.call('HSET', parts, index, record)
  end
  if set_length then
    local c = tonumber(u[5])
    redis.call('HSET', upload, 'total_size', ARGV[4], 'total_chunks', string.format('%.0f', math.ceil(length / c)))
  end
  redis.call('HSET', upload, 'received_bytes', ARGV[3], 'updated_at', now_iso)
  redis.call('EXPIREAT', upload, deadline)
  if redis.call('EXISTS', parts) == 1 then redis.call('EXPIREAT', parts, deadline) end
  return {'ok', deadline, set_length and 1 or 0, pushed and redis.call('HGETALL', parts) or {}, replaced}
end

local result = append()
if result[1] == 'ok' then return result end
local recorded = {}
for i = 0, n - 1 do
  recorded[i + 1] = redis.call('HGET', parts, ARGV[11 + i * 2]) == ARGV[12 + i * 2] and 1 or 0
end
return {result[1], result[2] or 0, recorded}
