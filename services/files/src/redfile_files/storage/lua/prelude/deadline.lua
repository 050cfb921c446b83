-- An upload's deadline, shared by all of its keys.
-- push_deadline: a request more than a tenth of ttl after the deadline was last set moves every key of
-- the upload (the hash, the part table, each chunk) to now + ttl; returns the deadline in force.
--! exports: push_deadline
local function push_deadline(upload, parts, chunk_prefix, deadline, ttl, now)
  if deadline - now >= ttl * 0.9 then return deadline end
  deadline = now + ttl
  redis.call('HSET', upload, 'deadline', deadline)
  for _, i in ipairs(redis.call('HKEYS', parts)) do
    redis.call('EXPIREAT', chunk_prefix .. i, deadline)
  end
  return deadline
end
