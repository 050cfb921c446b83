-- Turn an upload's reservation into a charge of its file's size, index the file (its names entry recorded as in
-- flight until the commit settles), and take a lease.
-- KEYS[1] quota   KEYS[2] held   KEYS[3] the user's file index   KEYS[4] due   KEYS[5] names   KEYS[6] sizes   KEYS[7] rows
-- ARGV[1] id   ARGV[2] size   ARGV[3] index score (created ms)   ARGV[4] default quota   ARGV[5] the lease's span (µs)
-- ARGV[6] the id as the indexes hold it   ARGV[7] the file's row (JSON {f, n})
-- Reply: {'ok', lease score, now (µs)} | {'gone'} | {'over_quota', limit, used, reserved}
--! include: ledger
--! include: index
local quota, held, index, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local names, sizes, rows = KEYS[5], KEYS[6], KEYS[7]
local id, size = ARGV[1], tonumber(ARGV[2])
local kind, n = parse(redis.call('HGET', held, id))
if not kind then return {'gone'} end
if kind == 'c' then
  if n ~= size then return {'gone'} end
else
  if size > n then
    local q = redis.call('HMGET', quota, 'limit', 'used', 'reserved')
    local limit = tonumber(q[1]) or tonumber(ARGV[4])
    if (tonumber(q[2]) or 0) + (tonumber(q[3]) or 0) - n + size > limit then
      return {'over_quota', limit, tonumber(q[2]) or 0, tonumber(q[3]) or 0}
    end
  end
  redis.call('HSET', held, id, 'c:' .. int(size))
  redis.call('HINCRBY', quota, 'reserved', int(-n))
  redis.call('HINCRBY', quota, 'used', int(size))
end
redis.call('ZADD', index, ARGV[3], id)
index_pending(names, rows, id, ARGV[6], {cjson.decode(ARGV[7])})
redis.call('ZADD', sizes, ARGV[2], ARGV[6])
local s, now = lease(due, id, tonumber(ARGV[5]))
return {'ok', s, now}
