-- requeue_dead: dead -> queued with budgets and suspect reset, for the given ids, or when there
-- are none up to `limit` dead tasks (one batch of Storage.requeue_dead).
-- KEYS: P:ids, P:queues; for each task, P:{q}: dead, ready, wake and t:<id>.
-- ARGV: prefix, limit, then the ids (none: any dead task)
-- Returns: how many tasks it requeued.

local now = now_us()
local writes, woken = {}, {}

local function requeue(b, id)
  local tk = b .. 't:' .. id
  local f = redis.call('HMGET', tk, 'seq', 'priority')
  gather(writes, 'ZREM', b .. 'dead', id)
  gather(writes, 'ZADD', b .. 'ready', -tonumber(f[2]), ready_member(f[1], id))
  redis.call('HDEL', tk, 'reason', 'eta', 'alone', 'suspect')
  redis.call('HSET', tk, 'state', 'queued', 'errors', 0, 'interruptions', 0, 'crashes', 0,
    'updated_at', int(now))
  woken[b] = true
end

local requeued = each_in('dead', 3, tonumber(ARGV[2]), requeue)
flush(writes)
for b in pairs(woken) do
  wake(b)
end
return requeued
