-- dead: running -> dead with a reason and error text; fenced. Reason `error` counts one error,
-- `interrupted` one interruption.
-- KEYS: P:{q}: of the token's queue; touches its tokens, leases, dead and t:<id> keys.
-- ARGV: prefix, token, reason, has error ('1' or ''), error, history detail
-- Returns: 1, or 0 when the token holds no lease.

local reason = ARGV[3]
local tk = settle(KEYS[1], ARGV[2], reason, 'dead', ARGV[6], now_us())
if not tk then
  return 0
end
redis.call('HSET', tk, 'reason', reason)
if ARGV[4] == '1' then
  redis.call('HSET', tk, 'error', ARGV[5])
else
  redis.call('HDEL', tk, 'error')
end
if reason == 'error' then
  redis.call('HINCRBY', tk, 'errors', 1)
elseif reason == 'interrupted' then
  redis.call('HINCRBY', tk, 'interruptions', 1)
end
return 1
