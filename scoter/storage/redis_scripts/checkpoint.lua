-- checkpoint: store the attempt's progress for the next lease; fenced.
-- KEYS: P:{q}: of the token's queue; touches its tokens and t:<id> keys.
-- ARGV: prefix, token, state
-- Returns: 1, or 0 when the token holds no lease.

local id = redis.call('HGET', KEYS[1] .. 'tokens', ARGV[2])
if not id then
  return 0
end
redis.call('HSET', KEYS[1] .. 't:' .. id, 'checkpoint', ARGV[3], 'updated_at', int(now_us()))
return 1
