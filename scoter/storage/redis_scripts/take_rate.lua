-- take_rate: count one use of a key unless it was used `limit` times in the last `per` µs.
-- KEYS: P:starts:<@key>, P:starts:seq (the members' sequence)
-- ARGV: prefix, key (with its '@'), limit, per (µs)
-- Returns: 1 when the use counted, 0 when the limit was reached.

local now = now_us()
if window(ARGV[2], tonumber(ARGV[4]), now) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, redis.call('INCR', KEYS[2]))
return 1
