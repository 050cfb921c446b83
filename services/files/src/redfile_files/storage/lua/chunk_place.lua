-- Put a chunk's staged bytes in place, in the chunk's slot: renamed to its key, unless a chunk is at that key
-- already (the same content: the key names it), which is kept as it is, bytes and TTL.
-- KEYS[1] the staging key   KEYS[2] the chunk key
-- ARGV[1] the chunk's TTL (ms) when this creates it
-- Reply: 1 (created) | 0 (kept: it was there) | -1 (no staged bytes: a SET Redis refused, or the key expired)
-- The chunk is looked for first, so the script run again after it renamed the staged bytes away is a no-op.
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('UNLINK', KEYS[1])
  return 0
end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
