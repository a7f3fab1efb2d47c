-- retry: running -> scheduled at eta (queued when due now), counting one error; fenced.
-- KEYS: P:{q}: of the token's queue; touches its tokens, leases, scheduled and due or
--       ready and wake, and t:<id> keys.
-- ARGV: prefix, token, eta as µs from now, error, history detail
-- Returns: 1, or 0 when the token holds no lease.

local b, now = KEYS[1], now_us()
local eta = now + tonumber(ARGV[3])
local state = eta <= now and 'queued' or 'scheduled'
local tk, id = settle(b, ARGV[2], 'error', state, ARGV[5], now)
if not tk then
  return 0
end
redis.call('HINCRBY', tk, 'errors', 1)
redis.call('HSET', tk, 'eta', int(eta), 'error', ARGV[4])
if state == 'scheduled' then
  redis.call('ZADD', b .. 'due', eta, id)
end
return 1
