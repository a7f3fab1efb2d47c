-- release: running -> queued at once, keeping the checkpoint, counting one interruption; fenced.
-- KEYS: P:{q}: of the token's queue; touches its tokens, leases, ready, wake and t:<id>
--       keys.
-- ARGV: prefix, token, reason
-- Returns: 1, or 0 when the token holds no lease.

local tk = settle(KEYS[1], ARGV[2], 'interrupted', 'queued', ARGV[3], now_us())
if not tk then
  return 0
end
redis.call('HINCRBY', tk, 'interruptions', 1)
return 1
