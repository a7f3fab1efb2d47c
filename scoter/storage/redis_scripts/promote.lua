-- promote: move up to `limit` scheduled tasks whose eta is at or before now to queued (one
-- batch of Storage.promote).
-- KEYS: P:queues; for each queue in it, P:{q}: due, scheduled, ready, wake and t:<id>.
-- ARGV: prefix, now as µs from the server's clock, limit
-- Returns: how many tasks it moved.

local now = now_us() + tonumber(ARGV[2])
local writes, woken = {}, {}
local moved = batch_of('due', int(now), tonumber(ARGV[3]), function(b, id)
  local tk = b .. 't:' .. id
  local f = redis.call('HMGET', tk, 'seq', 'priority')
  gather(writes, 'ZREM', b .. 'due', id)
  gather(writes, 'ZREM', b .. 'scheduled', id)
  gather(writes, 'ZADD', b .. 'ready', -tonumber(f[2]), ready_member(f[1], id))
  redis.call('HSET', tk, 'state', 'queued', 'updated_at', int(now))
  woken[b] = true
end)
flush(writes)
for b in pairs(woken) do
  wake(b)
end
return moved
