-- Turn a complete upload into a file at once, fenced: meta written (with the upload's data key and layout), part
-- table loses its TTL (or gets the file's expiry), upload hash deleted; or nothing, when a part is missing or the
-- sizes do not add up.  The chunks, in slots of their own, were checked before and get their TTL after.
-- KEYS[1] upload   KEYS[2] parts   KEYS[3] meta
-- ARGV[1] owner   ARGV[2] not after (unix µs)   ARGV[3] total_chunks   ARGV[4] size
-- ARGV[5] the file's expiry (unix s; 0: none)   ARGV[6] how many missing indices to list
-- ARGV[7] recorded chunks the caller found missing ('i,j,...')   ARGV[8..] meta field, value, ...
-- Reply: {'ok'} | {'late'} | {'not_found'} | {'exists'} | {'missing', count, {indices}} | {'size', received bytes}
--! include: time
local upload, parts, meta = KEYS[1], KEYS[2], KEYS[3]
local owner, total, size = ARGV[1], ARGV[3], tonumber(ARGV[4])
local expires = tonumber(ARGV[5])
if now_us > tonumber(ARGV[2]) then return {'late'} end
local u = redis.call('HMGET', upload, 'owner', 'total_chunks', 'received_bytes')
if not u[1] or u[1] ~= owner or u[2] ~= total then return {'not_found'} end
if redis.call('EXISTS', meta) == 1 then return {'exists'} end
local n = tonumber(total)
local lost = {}
for i in string.gmatch(ARGV[7], '%d+') do lost[tonumber(i)] = true end
local missing, count = {}, 0
for i = 0, n - 1 do
  if lost[i] or redis.call('HEXISTS', parts, i) == 0 then
    count = count + 1
    if count <= tonumber(ARGV[6]) then missing[count] = i end
  end
end
if count > 0 then return {'missing', count, missing} end
if tonumber(u[3]) ~= size then return {'size', tonumber(u[3])} end
redis.call('HSET', meta, unpack(ARGV, 8))
-- the upload's data key as stored now: redfile-rekey may have re-wrapped it since the caller read it
local u2 = redis.call('HMGET', upload, 'dek', 'layout')
if u2[1] then redis.call('HSET', meta, 'dek', u2[1]) end
if u2[2] then redis.call('HSET', meta, 'layout', u2[2]) end
if expires > 0 then
  redis.call('EXPIREAT', meta, expires)
  redis.call('EXPIREAT', parts, expires)
else
  redis.call('PERSIST', parts)
end
redis.call('DEL', upload)
return {'ok'}
