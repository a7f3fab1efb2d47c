-- restore: undo revoke. A task dead with reason `revoked` goes back to queued, or to scheduled
-- when its eta is ahead; every id's record in P:revocations is deleted.
-- KEYS: P:ids, P:revocations; for each task, P:{q}: t:<id>, dead, ready, wake, scheduled, due.
--       On a cluster (ONE_QUEUE): only P:{q}: of the queue the ids are in; the caller deletes
--       the records in P:revocations.
-- ARGV: prefix, then the ids
-- Returns: the ids it requeued or whose record it deleted.

local REVOCATIONS = not ONE_QUEUE and KEYS[2]
local now = now_us()
local restored, seen = {}, {}

local function requeue(b, id)
  local tk = b .. 't:' .. id
  local f = redis.call('HMGET', tk, 'seq', 'priority', 'eta')
  local eta = whole(f[3])
  redis.call('ZREM', b .. 'dead', id)
  redis.call('HDEL', tk, 'reason', 'error')
  if eta and eta > now then
    redis.call('ZADD', b .. 'scheduled', whole(f[1], 0) or now, id)
    redis.call('ZADD', b .. 'due', eta, id)
    redis.call('HSET', tk, 'state', 'scheduled', 'updated_at', int(now))
  else
    make_ready(b, id, f[1], f[2])
    redis.call('HSET', tk, 'state', 'queued', 'updated_at', int(now))
  end
end

for i = 2, #ARGV do
  local id = ARGV[i]
  if not seen[id] then
    seen[id] = true
    local listed = REVOCATIONS and redis.call('HDEL', REVOCATIONS, 'id:' .. id) == 1
    local queue = not ONE_QUEUE and redis.call('HGET', IDS, id)
    local b = ONE_QUEUE and KEYS[1] or queue and base_of(queue)
    local f = b and try({}, b .. 't:' .. id, 'HMGET', 'state', 'reason')
    if f and f[1] == 'dead' and f[2] == 'revoked' then
      requeue(b, id)
      listed = true
    end
    if listed then
      restored[#restored + 1] = id
    end
  end
end
return restored
