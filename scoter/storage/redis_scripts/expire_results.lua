-- expire_results: delete up to `limit` done tasks whose result TTL ran out before now (one
-- batch of Storage.expire_results).
-- KEYS: P:ids, P:queues; for each queue in it, P:{q}: expiry, done and t:<id>.
-- ARGV: prefix, now as µs from the server's clock, limit
-- A zset of the wrong type skips its queue.
-- Returns: how many tasks it deleted, and the problems (see lib.lua).

local now = now_us() + tonumber(ARGV[2])
local writes, problems = {}, {}
local deleted = batch_of('expiry', '(' .. int(now), tonumber(ARGV[3]), problems, function(b, id)
  forget(b, id, 'done', writes)
end)
flush(writes)
return {deleted, problems}
