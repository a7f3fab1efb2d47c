-- promote: move scheduled tasks whose eta is at or before now to queued.
-- KEYS: P:queues; for each queue in it, P:{q}: due, scheduled, ready, wake and t:<id>.
-- ARGV: prefix, now as µs from the server's clock
-- Returns: how many tasks it moved.

local now = now_us() + tonumber(ARGV[2])
local moved = 0
for _, b in ipairs(all_bases()) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', b .. 'due', '-inf', now)) do
    local tk = b .. 't:' .. id
    local f = redis.call('HMGET', tk, 'seq', 'priority')
    redis.call('ZREM', b .. 'due', id)
    redis.call('ZREM', b .. 'scheduled', id)
    make_ready(b, id, f[1], f[2])
    redis.call('HSET', tk, 'state', 'queued', 'updated_at', int(now))
    moved = moved + 1
  end
end
return moved
