-- isolate: mark the attempt holding the token as run alone, so that a crash of its holder is its
-- own (see crash in lib.lua); fenced. A claim starts every attempt not alone.
-- KEYS: P:{q}: of the token's queue; touches its tokens and t:<id> keys.
-- ARGV: prefix, token
-- Returns: 1, or 0 when the token holds no lease.

local id = redis.call('HGET', KEYS[1] .. 'tokens', ARGV[2])
if not id then
  return 0
end
redis.call('HSET', KEYS[1] .. 't:' .. id, 'alone', '1')
return 1
