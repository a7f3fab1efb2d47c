-- promote: move scheduled tasks whose eta is at or before now to queued.
-- KEYS: P:queues; for each queue in it, P:{q}: due, scheduled, ready, wake and t:<id>.
-- ARGV: prefix, now as µs from the server's clock
-- A task whose seq or priority is not a whole number is quarantined instead; one with no hash
-- left (gone, or a key of the wrong type) is taken out of due and scheduled. A due key of the
-- wrong type skips its queue.
-- Returns: how many tasks it moved, and the problems (see lib.lua).

local now = now_us() + tonumber(ARGV[2])
local moved, problems = 0, {}
for _, b in ipairs(all_bases()) do
  for _, id in ipairs(try(problems, b .. 'due', 'ZRANGEBYSCORE', '-inf', now) or {}) do
    local tk = b .. 't:' .. id
    local f = try({}, tk, 'HMGET', 'seq', 'priority', 'queue')
    redis.call('ZREM', b .. 'due', id)
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
      make_ready(b, id, f[1], f[2])
      redis.call('HSET', tk, 'state', 'queued', 'updated_at', int(now))
      moved = moved + 1
    end
  end
end
return {moved, problems}
