-- ack_flows_and_claim: ack_many_and_claim.lua for a group of acks of which some hand a flow on
-- (scoter.flows): each ack that lands stores its flow in this same step, before the claim:
-- its next steps (as enqueue.lua stores them, whose text runs here as `enqueue_script`), its
-- chord's countdown (the member that completes it stores the callback), the release of the
-- chord its own ack ends. An ack refused (its token holds no lease) stores none of it.
-- KEYS: P:ids first (a directory key: the tasks it stores may go to any queue, so it is not
--       confined to one queue's slot, see ONE_QUEUE in lib.lua), then P:{q}: of each ack's token
--       queue (one per ack, in order), then P:{q}: of each queue to claim from; touches what
--       ack_many_and_claim.lua and enqueue.lua touch, and
--       P:chord:<id>, the hash of a chord's countdown: size, done, and r<index> per finished
--       member, its result.
-- ARGV: prefix, number of acks, n, lease (µs), consumer id, then 4 per ack as
--       ack_many_and_claim.lua takes them, then n random token prefixes, then per ack its
--       flow: the number of tasks to store, 7 values per task as enqueue.lua takes them, the
--       chord to count down ('' for none: then nothing more of it), that member's index, the
--       chord's size, the member's result and 7 values of the chord's callback, then the
--       chord to release ('' for none)
-- Returns: as ack_many_and_claim.lua.

-- Store tasks (7 values each) by running enqueue.lua on them: it reads its own ARGV.
local function store(values)
  for k = #ARGV, 2, -1 do
    ARGV[k] = nil
  end
  ARGV[2] = '0' -- an id already stored, live or finished, is left as it is
  for k, value in ipairs(values) do
    ARGV[k + 2] = value
  end
  enqueue_script()
end

-- Count member `index` of chord `chord` as finished with `result`, once; whether it was the
-- last of `size`.
local function join(chord, index, size, result)
  local key = PREFIX .. ':chord:' .. chord
  if redis.call('HSETNX', key, 'r' .. index, result) == 0 then
    return false
  end
  redis.call('HSETNX', key, 'size', size)
  return redis.call('HINCRBY', key, 'done', 1) == tonumber(redis.call('HGET', key, 'size'))
end

local now = now_us()
local acks, n, consumer = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5]
local expires = now + tonumber(ARGV[4])
local out, problems = {}, {}
ack_many(2, 6, acks, now, out)

local tasks, tokens, at = {}, {}, 6 + acks * 4
for k = at, at + n - 1 do
  tokens[#tokens + 1] = ARGV[k]
end
at = at + n
for i = 1, acks do
  local landed = out[i] == 1
  local count = tonumber(ARGV[at])
  if landed then
    for k = at + 1, at + count * 7 do
      tasks[#tasks + 1] = ARGV[k]
    end
  end
  at = at + 1 + count * 7
  local chord = ARGV[at]
  if chord ~= '' then
    if landed and join(chord, ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]) then
      for k = at + 4, at + 10 do
        tasks[#tasks + 1] = ARGV[k]
      end
    end
    at = at + 10
  end
  if landed and ARGV[at + 1] ~= '' then
    redis.call('DEL', PREFIX .. ':chord:' .. ARGV[at + 1])
  end
  at = at + 2
end
if #tasks > 0 then
  store(tasks)
end

out[acks + 1], out[acks + 2] = int(expires), problems
if n > 0 then
  local bases = {}
  for i = acks + 2, #KEYS do
    bases[#bases + 1] = KEYS[i]
  end
  for k = #ARGV, 2, -1 do
    ARGV[k] = nil
  end
  for k, token in ipairs(tokens) do
    ARGV[k + 1] = token
  end
  claim(bases, n, 2, consumer, expires, now, out, problems)
end
return out
