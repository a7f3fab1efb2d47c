-- promote: move up to `limit` scheduled tasks whose eta is at or before now to queued (one
-- batch of Storage.promote).
-- KEYS: P:queues; for each queue in it, P:{q}: due, scheduled, ready, wake and t:<id>.
-- ARGV: prefix, now as µs from the server's clock, limit
-- A task whose seq or priority is not a whole number is quarantined instead; one with no hash
-- left (gone, or a key of the wrong type) is taken out of due and scheduled. A due key of the
-- wrong type skips its queue.
-- Returns: how many tasks it took out of due (moved, quarantined or dropped), and the problems
--          (see lib.lua).

local now = now_us() + tonumber(ARGV[2])
local writes, woken, problems = {}, {}, {}
local taken = batch_of('due', int(now), tonumber(ARGV[3]), problems, function(b, id)
  local tk = b .. 't:' .. id
  local f = try({}, tk, 'HMGET', 'seq', 'priority', 'queue')
  gather(writes, 'ZREM', b .. 'due', id)
  redis.pcall('ZREM', b .. 'scheduled', id)
  if not f or not f[3] and redis.call('EXISTS', tk) == 0 then
    dropped(id, b .. 'due', problems)
  elseif not whole(f[1], 0) or not whole(f[2]) then
    local name, value = 'seq', f[1]
    if whole(f[1], 0) then
      name, value = 'priority', f[2]
    end
    quarantine(b, id, f[1], name .. ' is ' .. shown(value) .. ', not a whole number', now,
      problems)
  else
    gather(writes, 'ZADD', b .. 'ready', -tonumber(f[2]), ready_member(f[1], id))
    redis.call('HSET', tk, 'state', 'queued', 'updated_at', int(now))
    woken[b] = true
  end
end)
flush(writes)
for b in pairs(woken) do
  wake(b)
end
return {taken, problems}
