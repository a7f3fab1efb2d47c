-- requeue_dead: dead -> queued with budgets and suspect reset, for the given ids or every dead
-- task.
-- KEYS: P:ids, P:queues; for each task, P:{q}: dead, ready, wake and t:<id>.
-- ARGV: prefix, then the ids (none: every dead task)
-- Returns: how many tasks it requeued.

local now = now_us()

local function requeue(b, id)
  local tk = b .. 't:' .. id
  local f = redis.call('HMGET', tk, 'seq', 'priority')
  redis.call('ZREM', b .. 'dead', id)
  make_ready(b, id, f[1], f[2])
  redis.call('HDEL', tk, 'reason', 'eta', 'alone', 'suspect')
  redis.call('HSET', tk, 'state', 'queued', 'errors', 0, 'interruptions', 0, 'crashes', 0,
    'updated_at', int(now))
end

return each_in('dead', 2, requeue)
