-- Set an id's holding, index entries and due time to a target, only if its due score is still the one the
-- caller saw (a newer lease wins).  Keeps the quota's sums equal to the holdings', and the names and sizes
-- entries the truth's (every other names entry of the id is one of its rows: index_settle).
-- KEYS[1] quota   KEYS[2] held   KEYS[3] the user's file index   KEYS[4] due   KEYS[5] names   KEYS[6] sizes   KEYS[7] rows
-- ARGV[1] id   ARGV[2] the due score seen ('' any)   ARGV[3] 'r' (reserve at least) | 'c' (charge) | '' (hold nothing)
-- ARGV[4] bytes   ARGV[5] index score ('' not indexed)   ARGV[6] due score ('' none)
-- ARGV[7] the id as the indexes hold it   ARGV[8] the file's row (JSON {f, n}; with an index score)
-- ARGV[9] '1': keep the row (the file expires)
-- Reply: 'ok:' .. the kind it replaced ('r', 'c' or '') | 'busy'
--! include: ledger
--! include: index
local quota, held, index, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local names, sizes, rows = KEYS[5], KEYS[6], KEYS[7]
local id, expected, target = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('ZSCORE', due, id)
if expected ~= '' and (not cur or tonumber(cur) ~= tonumber(expected)) then return 'busy' end
local okind, on = parse(redis.call('HGET', held, id))
local nkind, nn = nil, 0
if target == 'r' then
  nkind, nn = 'r', math.max(tonumber(ARGV[4]), on)
elseif target == 'c' then
  nkind, nn = 'c', tonumber(ARGV[4])
end
if okind then redis.call('HINCRBY', quota, counter(okind), int(-on)) end
if nkind then
  redis.call('HINCRBY', quota, counter(nkind), int(nn))
  redis.call('HSET', held, id, nkind .. ':' .. int(nn))
else
  redis.call('HDEL', held, id)
end
if ARGV[5] ~= '' then
  redis.call('ZADD', index, ARGV[5], id)
  index_settle(names, sizes, rows, id, ARGV[7], cjson.decode(ARGV[8]), nn, ARGV[9] == '1')
else
  redis.call('ZREM', index, id)
  index_settle(names, sizes, rows, id, ARGV[7], nil, 0, false)
end
if ARGV[6] ~= '' then redis.call('ZADD', due, ARGV[6], id) else redis.call('ZREM', due, id) end
cleanup(quota, held)
return 'ok:' .. (okind or '')
