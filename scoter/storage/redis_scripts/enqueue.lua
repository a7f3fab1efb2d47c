-- enqueue: store tasks in one step; a live id is left as it is, a done or dead one starts over
-- unless the restart flag is 0 (then every stored id is left as it is).
-- KEYS: P:ids, P:queues; per task the keys of its queue P:{q}: t:<id>, seq, ready and wake
--       or scheduled and due; for a finished id, the keys it leaves in its old queue.
-- ARGV: prefix, restart (1 or 0), then 7 per task: id, name, queue, payload, priority,
--       eta as µs from now ('' for none), max_crashes
-- Returns: how many tasks were stored.

local now = now_us()
local now_text = int(now)
local seqs, writes, woken, stored = {}, {}, {}, 0
local restart = ARGV[2] == '1'

-- Enter `id` in the directory under `queue` unless it is live. A new id costs one HSETNX; a
-- known one is live when scheduled, queued or running, and deleted when done or dead. On one
-- queue's slot (ONE_QUEUE, see lib.lua) the id is looked for in that queue only.
local function take_id(id, queue)
  if not ONE_QUEUE and redis.call('HSETNX', IDS, id, queue) == 1 then
    return true
  end
  local b = base_of(ONE_QUEUE and queue or redis.call('HGET', IDS, id))
  local state = redis.call('HGET', b .. 't:' .. id, 'state')
  if restart and (state == 'done' or state == 'dead') then
    forget(b, id, state)
  elseif state then
    return false
  end
  if not ONE_QUEUE then
    redis.call('HSET', IDS, id, queue)
  end
  return true
end

-- The next seq of the queue at `b`: max(last + 1, now). The first of a call swaps in now and
-- reads the last one in one SET … GET, which is all a call of one task usually needs. A queue
-- without a seq is new: it joins P:queues (which holds every queue that has a seq).
local function next_seq(b, queue)
  local last = seqs[b]
  if not last then
    last = redis.call('SET', b .. 'seq', now_text, 'GET')
    if not last and not ONE_QUEUE then
      redis.call('SADD', QUEUES, queue)
    end
    last = tonumber(last or 0)
  end
  local seq = math.max(last + 1, now)
  seqs[b] = seq
  return seq
end

local function store(i)
  local id, queue, priority, eta = ARGV[i], ARGV[i + 2], ARGV[i + 4], ARGV[i + 5]
  local b = base_of(queue)
  local tk, seq = b .. 't:' .. id, next_seq(b, queue)
  eta = eta ~= '' and now + tonumber(eta) or nil
  local state = (eta == nil or eta <= now) and 'queued' or 'scheduled'
  redis.call('HSET', tk, 'name', ARGV[i + 1], 'queue', queue, 'payload', ARGV[i + 3],
    'priority', priority, 'max_crashes', ARGV[i + 6], 'state', state, 'seq', int(seq),
    'created_at', now_text, 'updated_at', now_text)
  if eta then
    redis.call('HSET', tk, 'eta', int(eta))
  end
  if state == 'queued' then
    gather(writes, 'ZADD', b .. 'ready', -tonumber(priority), ready_member(seq, id))
    woken[b] = true
  else
    redis.call('ZADD', b .. 'scheduled', seq, id)
    redis.call('ZADD', b .. 'due', eta, id)
  end
end

for i = 3, #ARGV, 7 do
  if take_id(ARGV[i], ARGV[i + 2]) then
    store(i)
    stored = stored + 1
  end
end
for b, seq in pairs(seqs) do
  if seq ~= now then
    redis.call('SET', b .. 'seq', int(seq))
  end
end
-- The ready members of each queue in a few ZADDs, then one wake-up token per queue.
flush(writes)
for b in pairs(woken) do
  wake(b)
end
return stored
