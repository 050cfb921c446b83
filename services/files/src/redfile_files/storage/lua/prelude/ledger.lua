-- The user slot's bookkeeping: holdings (held: id -> "r:<n>" reserved or "c:<n>" charged), the quota's sums,
-- due times and leases.
--! exports: now_us int lease parse counter cleanup
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(x) if x == 0 then return '0' end return string.format('%.0f', x) end
local function lease(due, id, span)
  local now = now_us()
  local s = now + span
  local cur = redis.call('ZSCORE', due, id)
  if cur and tonumber(cur) == s then s = s + 1 end
  redis.call('ZADD', due, int(s), id)
  return s, now
end
local function parse(h)
  if not h then return nil, 0 end
  return string.sub(h, 1, 1), tonumber(string.sub(h, 3))
end
local function counter(kind) if kind == 'r' then return 'reserved' end return 'used' end
local function cleanup(quota, held)
  if redis.call('HLEN', held) == 0 then
    local q = redis.call('HMGET', quota, 'limit', 'max_file')
    if not q[1] and not q[2] then redis.call('DEL', quota) end
  end
end
