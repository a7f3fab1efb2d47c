-- rescue: requeue up to `limit` running tasks whose lease expired before now (one batch of
-- Storage.rescue), by the crash rule (crash in lib.lua): an attempt run alone counts a crash
-- (dead with reason `crashed` once its crashes reach max_crashes); any other counts none and
-- its task is queued as a suspect.
-- KEYS: P:queues; for each queue in it, P:{q}: leases, tokens, ready and wake or dead, and
--       t:<id>.
-- ARGV: prefix, now as µs from the server's clock, detail of a charged crash, detail of one
--       not charged, limit
-- A lease that cannot be traced to its task's token (the token field missing or changed, the
-- task key gone or of the wrong type) is taken out of leases and tokens; its task, if it has a
-- hash left to mark, is quarantined. A leases or tokens key of the wrong type skips its queue.
-- Returns: the problems (see lib.lua), then 5 fields per task moved: id, name, new state,
--          crashes, charged (1 or 0).

local now = now_us() + tonumber(ARGV[2])
local problems = {}
local out = {problems}

-- Take the untraceable lease of task `id` out of the queue at `b`.
local function untrace(b, id, token)
  local tk = b .. 't:' .. id
  redis.call('ZREM', b .. 'leases', id)
  local held = try(problems, b .. 'tokens', 'HGETALL') or {}
  for i = 1, #held, 2 do
    if held[i + 1] == id then
      redis.call('HDEL', b .. 'tokens', held[i])
    end
  end
  if redis.call('TYPE', tk).ok ~= 'hash' then
    dropped(id, b .. 'leases', problems)
    return
  end
  local why = 'token is ' .. shown(token) .. ', which holds no lease'
  quarantine(b, id, redis.call('HGET', tk, 'seq'), why, now, problems)
end

batch_of('leases', '(' .. int(now), tonumber(ARGV[5]), problems, function(b, id)
  local token = try({}, b .. 't:' .. id, 'HGET', 'token')
  if token and try({}, b .. 'tokens', 'HGET', token) == id then
    crash(b, token, ARGV[3], ARGV[4], now, out, problems)
  else
    untrace(b, id, token)
  end
end)
return out
