-- revoke: revoke tasks by id. A scheduled or queued task goes dead `revoked` (a `revoked`
-- history entry); a running one keeps its lease and gets a record in P:revocations, field
-- id:<id> = its created_at (which a re-enqueue of the id changes), for its consumer.
-- KEYS: P:ids, P:revocations; for each task, P:{q}: t:<id>, ready, scheduled, due and dead.
--       On a cluster (ONE_QUEUE): only P:{q}: of the queue the ids are in; the caller records
--       the running ones in P:revocations.
-- ARGV: prefix, then the ids
-- Returns: per live id, the id, the state it was in and (running) its created_at, else ''.

local REVOCATIONS = not ONE_QUEUE and KEYS[2]
local now = now_us()
local out = {}

local function revoke(b, id, state)
  local tk = b .. 't:' .. id
  local f = redis.call('HMGET', tk, 'seq', 'attempts', 'history', 'created_at')
  if state == 'running' then
    if REVOCATIONS then
      redis.call('HSET', REVOCATIONS, 'id:' .. id, f[4] or '')
    end
    return f[4] or ''
  end
  if state == 'queued' then
    redis.call('ZREM', b .. 'ready', ready_member(f[1], id))
  else
    redis.call('ZREM', b .. 'scheduled', id)
    redis.call('ZREM', b .. 'due', id)
  end
  local detail = 'revoked while ' .. state
  redis.call('ZADD', b .. 'dead', whole(f[1], 0) or now, id)
  redis.call('HSET', tk, 'state', 'dead', 'reason', 'revoked', 'error', detail,
    'updated_at', int(now), 'history', record(f[3], f[2], 'revoked', now, nil, detail))
  return ''
end

local seen = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local queue = not ONE_QUEUE and not seen[id] and redis.call('HGET', IDS, id)
  local b = ONE_QUEUE and not seen[id] and KEYS[1] or queue and base_of(queue)
  seen[id] = true
  if b then
    local state = try({}, b .. 't:' .. id, 'HGET', 'state')
    if state == 'scheduled' or state == 'queued' or state == 'running' then
      local n = #out
      out[n + 1], out[n + 2], out[n + 3] = id, state, revoke(b, id, state)
    end
  end
end
return out
