-- release: running -> queued at once (or scheduled `delay` µs from now), keeping the
-- checkpoint, counting one interruption; fenced.
-- KEYS: P:{q}: of the token's queue; touches its tokens, leases, ready and wake or
--       scheduled and due, and t:<id> keys.
-- ARGV: prefix, token, reason, delay in µs
-- Returns: 1, or 0 when the token holds no lease.

local b, now, delay = KEYS[1], now_us(), tonumber(ARGV[4])
local state = delay > 0 and 'scheduled' or 'queued'
local tk, id = settle(b, ARGV[2], 'interrupted', state, ARGV[3], now)
if not tk then
  return 0
end
redis.call('HINCRBY', tk, 'interruptions', 1)
if delay > 0 then
  redis.call('HSET', tk, 'eta', int(now + delay))
  redis.call('ZADD', b .. 'due', now + delay, id)
end
return 1
