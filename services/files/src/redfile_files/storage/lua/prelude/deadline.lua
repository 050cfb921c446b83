-- An upload's deadline, shared by its hash and part table (its chunks, in slots of their own, follow it from the caller).
-- push_deadline: a request more than a tenth of ttl after the deadline was last set moves it to now + ttl;
-- returns the deadline in force and whether it moved.
--! exports: push_deadline
local function push_deadline(upload, deadline, ttl, now)
  if deadline - now >= ttl * 0.9 then return deadline, false end
  deadline = now + ttl
  redis.call('HSET', upload, 'deadline', deadline)
  return deadline, true
end
