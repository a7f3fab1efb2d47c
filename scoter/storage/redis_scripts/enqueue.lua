-- enqueue: store tasks in one step; a live id is left as it is, a done or dead one starts over.
-- KEYS: P:ids, P:queues; per task the keys of its queue P:{q}: t:<id>, seq, ready and wake
--       or scheduled and due; for a finished id, the keys it leaves in its old queue.
-- ARGV: prefix, then 7 per task: id, name, queue, payload, priority,
--       eta as µs from now ('' for none), max_crashes
-- Returns: how many tasks were stored.

local now = now_us()
local now_text = int(now)
local seqs, ready, stored = {}, {}, 0

-- True when task `id` is scheduled, queued or running; a done or dead one is deleted.
local function live(id)
  local queue = redis.call('HGET', IDS, id)
  if not queue then
    return false
  end
  local b = base_of(queue)
  local state = redis.call('HGET', b .. 't:' .. id, 'state')
  if state == 'done' or state == 'dead' then
    forget(b, id, state)
    return false
  end
  return state ~= false
end

local function next_seq(b)
  local seq = math.max((seqs[b] or tonumber(redis.call('GET', b .. 'seq') or 0)) + 1, now)
  seqs[b] = seq
  return seq
end

local function store(i)
  local id, queue, priority, eta = ARGV[i], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5]
  local b = base_of(queue)
  local tk, seq = b .. 't:' .. id, next_seq(b)
  eta = eta ~= '' and now + tonumber(eta) or nil
  local state = (eta == nil or eta <= now) and 'queued' or 'scheduled'
  redis.call('HSET', tk, 'name', ARGV[i + 1], 'queue', queue, 'payload', ARGV[i + 3],
    'priority', priority, 'max_crashes', ARGV[i + 6], 'state', state, 'seq', int(seq),
    'created_at', now_text, 'updated_at', now_text)
  if eta then
    redis.call('HSET', tk, 'eta', int(eta))
  end
  if state == 'queued' then
    redis.call('ZADD', b .. 'ready', -tonumber(priority), ready_member(seq, id))
    ready[b] = true
  else
    redis.call('ZADD', b .. 'scheduled', seq, id)
    redis.call('ZADD', b .. 'due', eta, id)
  end
  redis.call('HSET', IDS, id, queue)
end

local queues = {}
for i = 2, #ARGV, 7 do
  if not live(ARGV[i]) then
    store(i)
    queues[ARGV[i + 2]] = true
    stored = stored + 1
  end
end
for b, seq in pairs(seqs) do
  redis.call('SET', b .. 'seq', int(seq))
end
for b in pairs(ready) do
  wake(b)
end
for queue in pairs(queues) do
  redis.call('SADD', QUEUES, queue)
end
return stored
