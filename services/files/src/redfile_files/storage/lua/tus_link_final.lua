-- Record on a partial upload that a final upload waits for it (only while the partial exists).
-- KEYS[1] the partial's upload hash   ARGV[1] 'tus_final:<final id>'
-- Reply: 1 | 0 (no such partial)
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 1
