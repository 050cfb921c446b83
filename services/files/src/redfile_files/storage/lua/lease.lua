-- Take a lease on an id: its due time becomes now + span (one more µs if that is its score already).
-- KEYS[1] due   ARGV[1] id   ARGV[2] span (µs)
-- Reply: {lease score, now (µs)}
--! include: ledger
local s, now = lease(KEYS[1], ARGV[1], tonumber(ARGV[2]))
return {s, now}
