-- The owner's name and size indexes (names: '<folder key>\0<casefold(name)>\0<ix>', all scores 0; sizes: ix -> size)
-- and the rows of their entries in flight (rows: id -> JSON list of {f = folder key, n = casefold(name)}).
-- A file's entries follow from its meta; a names entry its meta does not show is always one of the id's rows, until
-- the operation's last step or the reconciler settles the id (index_settle) and keeps at most the truth's row.
-- index_pending: record rows in flight and write their names entries (before the file-slot step).
-- index_settle: make the id's entries the truth's (a row, or nil: not indexed); keep its row when asked (an expiry).
--! exports: index_pending index_settle
local function entry(row, ix) return row.f .. '\0' .. row.n .. '\0' .. ix end
local function index_pending(names, rows, id, ix, new)
  local raw = redis.call('HGET', rows, id)
  local list = raw and cjson.decode(raw) or {}
  for _, row in ipairs(new) do
    local known = false
    for _, r in ipairs(list) do
      if r.f == row.f and r.n == row.n then known = true end
    end
    if not known then list[#list + 1] = {f = row.f, n = row.n} end
    redis.call('ZADD', names, 0, entry(row, ix))
  end
  redis.call('HSET', rows, id, cjson.encode(list))
end
local function index_settle(names, sizes, rows, id, ix, truth, size, keep)
  local raw = redis.call('HGET', rows, id)
  local want = truth and entry(truth, ix)
  if raw then
    for _, r in ipairs(cjson.decode(raw)) do
      local e = entry(r, ix)
      if e ~= want then redis.call('ZREM', names, e) end
    end
  end
  if truth then
    redis.call('ZADD', names, 0, want)
    redis.call('ZADD', sizes, size, ix)
    if keep then redis.call('HSET', rows, id, cjson.encode({{f = truth.f, n = truth.n}})) else redis.call('HDEL', rows, id) end
  else
    redis.call('ZREM', sizes, ix)
    redis.call('HDEL', rows, id)
  end
end
