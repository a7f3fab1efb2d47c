-- progress: record how far the running attempt got, for inspection; fenced.
-- KEYS: P:{q}: of the token's queue; touches its tokens and t:<id> keys.
-- ARGV: prefix, token, done, total
-- Returns: 1, or 0 when the token holds no lease.

local id = redis.call('HGET', KEYS[1] .. 'tokens', ARGV[2])
if not id then
  return 0
end
redis.call('HSET', KEYS[1] .. 't:' .. id, 'progress', ARGV[3] .. ',' .. ARGV[4])
return 1
