-- expire_results: delete done tasks whose result TTL ran out before now.
-- KEYS: P:ids, P:queues; for each queue in it, P:{q}: expiry, done and t:<id>.
-- ARGV: prefix, now as µs from the server's clock
-- Returns: how many tasks it deleted.

local now = now_us() + tonumber(ARGV[2])
local deleted = 0
for _, b in ipairs(all_bases()) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', b .. 'expiry', '-inf', '(' .. int(now))) do
    forget(b, id, 'done')
    deleted = deleted + 1
  end
end
return deleted
