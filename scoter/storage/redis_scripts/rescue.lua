-- rescue: requeue every running task whose lease expired before now, counting a crash; dead
-- with reason `crashed` once its crashes reach max_crashes.
-- KEYS: P:queues; for each queue in it, P:{q}: leases, tokens, ready and wake or dead, and
--       t:<id>.
-- ARGV: prefix, now as µs from the server's clock
-- Returns: 4 fields per task moved: id, name, new state, crashes.

local now = now_us() + tonumber(ARGV[2])
local out = {}
for _, b in ipairs(all_bases()) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', b .. 'leases', '-inf', '(' .. int(now))) do
    crash(b, redis.call('HGET', b .. 't:' .. id, 'token'), 'lease expired', now, out)
  end
end
return out
