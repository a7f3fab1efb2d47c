-- enqueue_unique: store tasks as enqueue.lua does, in one step, except each task whose unique
-- key a live task holds: that one is not stored. enqueue.lua's text stands in store_one (see
-- _redis_scripts.py), called once per task with ARGV set to that task alone.
-- KEYS: P:ids, P:queues, P:unique, and those of enqueue.lua for each task.
-- ARGV: prefix, restart (1 or 0), then 8 per task: the 7 of enqueue.lua, then its unique key
--       ('' for none)
-- Returns: per task, the id of the live task holding its key: its own when it was stored (or
--          was live already), the holder's when not.

local LIVE = {scheduled = true, queued = true, running = true}

local function store_one()
--{enqueue}
end

-- The live task holding `key`, or nil: the task P:unique names, if it is live and its
-- `unique` field still names the key (a task started over by a plain enqueue holds none).
local function holder(key)
  local id = redis.call('HGET', UNIQUE, key)
  local queue = id and redis.call('HGET', IDS, id)
  if not queue then
    return nil
  end
  local f = try({}, base_of(queue) .. 't:' .. id, 'HMGET', 'state', 'unique') or {}
  if LIVE[f[1]] and f[2] == key then
    return id
  end
  return nil
end

local tasks = {}
for i = 3, #ARGV, 8 do
  tasks[#tasks + 1] = {unpack(ARGV, i, i + 7)}
end
local out = {}
for _, t in ipairs(tasks) do
  local key = t[8]
  local held = key ~= '' and holder(key)
  if held then
    out[#out + 1] = held
  else
    for j = #ARGV, 3, -1 do
      ARGV[j] = nil
    end
    for j = 1, 7 do
      ARGV[2 + j] = t[j]
    end
    if store_one() == 1 and key ~= '' then
      redis.call('HSET', UNIQUE, key, t[1])
      redis.call('HSET', base_of(t[3]) .. 't:' .. t[1], 'unique', key)
    end
    out[#out + 1] = t[1]
  end
end
return out
