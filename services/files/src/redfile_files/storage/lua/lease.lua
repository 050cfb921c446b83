-- Take a lease on an id: its due time becomes now + span (one more µs if that is its score already); with rows, record
-- them as in flight and write their names entries first (a rename's old and new, a delete's current one).
-- KEYS[1] due   KEYS[2] names   KEYS[3] rows
-- ARGV[1] id   ARGV[2] span (µs)   ARGV[3] the id as the indexes hold it   ARGV[4] rows (JSON list of {f, n}; '' none)
-- Reply: {lease score, now (µs)}
--! include: ledger
--! include: index
local due, names, rows = KEYS[1], KEYS[2], KEYS[3]
if ARGV[4] ~= '' then index_pending(names, rows, ARGV[1], ARGV[3], cjson.decode(ARGV[4])) end
local s, now = lease(due, ARGV[1], tonumber(ARGV[2]))
return {s, now}
