-- A page of the name index: entries in a lex range, in order, from after a cursor, whose name part holds a substring;
-- at most `budget` entries read per call, so a search that matches little never blocks Redis for long.
-- KEYS[1] names
-- ARGV[1] lowest entry, inclusive ('-' none)   ARGV[2] highest entry, exclusive ('+' none)   ARGV[3] after this entry ('' none)
-- ARGV[4] substring of the (case-folded) name ('' any)   ARGV[5] how many to answer   ARGV[6] budget   ARGV[7] 'asc' | 'desc'
-- Reply: {the last entry read ('' when the range ended), entry, ...}
local names = KEYS[1]
local lo, hi, after, q = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local want, budget, desc = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7] == 'desc'
local low = lo == '-' and '-' or '[' .. lo
local high = hi == '+' and '+' or '(' .. hi
if after ~= '' then
  if desc then high = '(' .. after else low = '(' .. after end
end
local out, read, last = {}, 0, ''
while read < budget do
  local n = math.min(500, budget - read)
  local batch
  if desc then
    batch = redis.call('ZREVRANGEBYLEX', names, high, low, 'LIMIT', 0, n)
  else
    batch = redis.call('ZRANGEBYLEX', names, low, high, 'LIMIT', 0, n)
  end
  for i = 1, #batch do
    local e = batch[i]
    read = read + 1
    last = e
    local ok = true
    if q ~= '' then
      local a = string.find(e, '\0', 1, true)
      local b = a and string.find(e, '\0', a + 1, true)
      ok = b ~= nil and string.find(string.sub(e, a + 1, b - 1), q, 1, true) ~= nil
    end
    if ok then
      out[#out + 1] = e
      if #out >= want then return {last, unpack(out)} end
    end
  end
  if #batch < n then return {'', unpack(out)} end
  if desc then high = '(' .. last else low = '(' .. last end
end
return {last, unpack(out)}
