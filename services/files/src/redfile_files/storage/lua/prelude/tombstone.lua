-- A deleted file's or aborted upload's tombstone: its part table (index -> record), its layout and owner, kept
-- without a TTL until the chunks it names are deleted.
-- bury: the part table becomes the tombstone (merged into one a crash left), with the layout ('1' when absent).
--! exports: bury
local function bury(parts, gone, layout, owner)
  if redis.call('EXISTS', gone) == 0 then
    if redis.call('EXISTS', parts) == 1 then redis.call('RENAME', parts, gone) end
  else
    local entries = redis.call('HGETALL', parts)
    for i = 1, #entries, 2 do redis.call('HSET', gone, entries[i], entries[i + 1]) end
    redis.call('UNLINK', parts)
  end
  redis.call('HSET', gone, 'layout', layout or '1', 'owner', owner)
  redis.call('PERSIST', gone)
end
