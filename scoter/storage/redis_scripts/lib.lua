-- lib: helpers the scripts share, in blocks separated by a blank line. scoter puts in front of
-- each script only the blocks it uses, directly or through another block: every call of a script
-- defines them afresh, and all of them cost about as much as an empty script call.
--
-- Key layout. P is the prefix (ARGV[1] of every script), q a queue name. The keys of one queue
-- share the hash tag {q}, so on a Redis Cluster they live in one slot; times are integer
-- microseconds of the server's clock (TIME).
--   P:{q}:t:<id>   hash    one task, with the fields of a SQLite row; absent = NULL, counters 0.
--                          token, consumer, lease_expires and progress describe the last lease:
--                          they mean something only while the state is running; so does alone
--                          ('1': the attempt runs alone, see isolate.lua). suspect '1': a
--                          holder died while running it beside other tasks (see crash below).
--   P:{q}:ready    zset    the queued tasks: score -priority, member <16-digit seq><id>
--   P:{q}:leases   zset    the running task ids by lease expiry (what rescue scans)
--   P:{q}:scheduled, P:{q}:done, P:{q}:dead
--                  zset    the task ids in that state by seq (age): counts and listings
--   P:{q}:due      zset    scheduled task ids by eta (what promote scans)
--   P:{q}:expiry   zset    done task ids by result expiry (what expire_results scans)
--   P:{q}:tokens   hash    lease token -> task id (fencing: a spent token is deleted)
--   P:{q}:seq      string  the last seq given out: max(last + 1, now), so ages compare across queues
--   P:{q}:wake     list    at most one wake-up token; idle consumers BLPOP it
--   P:ids          hash    task id -> queue (the directory: get, re-enqueue, purge by id)
--   P:queues       set     every queue name in use (added with the queue's seq key, by enqueue)
--   P:periodic     hash    periodic schedule name -> its last enqueued slot (see enqueue_slot.lua)
--   P:revocations  hash    task:<name> -> <until>|<once>; id:<id> -> created_at of a task revoked
--                          while running (see revoke.lua)
--   P:unique       hash    unique key -> the id of the last task stored with it; that task holds it
--                          while live and its hash's `unique` field names it (enqueue_unique.lua)
--   P:lock:<name>  hash    a lock: owner, holder, since, expires (absent: none), and task and token
--                          when held under that task's lease (see lock_held)
--   P:locks        set     the names of the locks that may be held
--   P:limits       hash    task name -> its limits: "concurrency,rate,per (µs)", '' for none
--   P:running:<n>  set     lease tokens of limited task n's claims; those whose lease is gone are
--                          dropped when counted
--   P:starts:<k>   zset    claims of rate-limited task k (uses of take_rate key @k): member a
--                          token or a sequence number, score the time; dropped past the window
-- On a Redis Cluster (redis_cluster.py) P:ids is split into buckets P:ids:<n> (see ids_take.lua),
-- and P:{q}:forgotten (list) holds the ids of the queue's deleted tasks until they leave them.
-- A cluster keeps no unique keys, locks or limits (they are the namespace's, not a queue's).
-- A lease token is 32 hex digits followed by its queue's name, so a fenced write finds its keys.
--
-- One bad record is that record's problem (DESIGN G11): a script checks the fields it needs of
-- each task and quarantines a task whose fields do not hold (dead, reason `corrupt`), reads the
-- keys of one queue or task with `try`, and skips (and reports) one of the wrong type. Scripts
-- that do so return their `problems`: pairs of what (a task, a key) and what was done about it.

local PREFIX = ARGV[1]
local IDS = PREFIX .. ':ids'
local QUEUES = PREFIX .. ':queues'
-- A script given a queue's base P:{q}: as its first key keeps to that queue's slot: on a Redis
-- Cluster every script is called so, and its caller keeps P:ids and P:queues, which live on
-- other slots (redis_cluster.py). Then the sweeps visit that queue alone, enqueue checks ids
-- within the queue, and a forgotten id is listed in P:{q}:forgotten for the caller to take out
-- of P:ids. The scripts that use the directories are otherwise given one of them first.
local ONE_QUEUE = string.sub(KEYS[1] or '', -2) == '}:'

local UNIQUE = PREFIX .. ':unique'
local LIMITS = PREFIX .. ':limits'
local TOKEN_HEX = 32

local SEQ_DIGITS = 16

-- The sorted set holding each state's tasks.
local INDEX = {scheduled = 'scheduled', queued = 'ready', running = 'leases', done = 'done',
  dead = 'dead'}

local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- An integer as a string, never in exponent notation.
local function int(n)
  return string.format('%d', n)
end

-- The most a counter may hold (COUNTER_MAX in _records.py): one more still fits a 32-bit
-- integer. WHOLE_MAX: the largest whole number a Lua number holds exactly.
local COUNTER_MAX = 2147483646
local WHOLE_MAX = 9007199254740991
-- A number, or a hash field written in decimal as `int` writes it, as a whole number from `low`
-- to `high` (default: any a Lua number holds exactly); nil when it is absent or not one.
local function whole(value, low, high)
  local n = tonumber(value)
  if not n or n % 1 ~= 0 or n < (low or -WHOLE_MAX) or n > (high or WHOLE_MAX) then
    return nil
  end
  if type(value) == 'string' and int(n) ~= value then
    return nil
  end
  return n
end

-- redis.call(command, key, ...) that notes a failure in `problems` and returns nil instead of
-- failing the script: for the keys of one queue or task, so that one of the wrong type spoils
-- only its own entry.
local function try(problems, key, command, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    problems[#problems + 1] = key
    problems[#problems + 1] = 'skipped: ' .. reply.err
    return nil
  end
  return reply
end

-- A stored value, short and printable (ASCII), for the text of a problem.
local function shown(value)
  if not value then
    return 'missing'
  end
  return "'" .. string.gsub(string.sub(value, 1, 40), '[^ -~]', '?') .. "'"
end

local function base_of(queue)
  return PREFIX .. ':{' .. queue .. '}:'
end

-- A seq that is not a number sorts first: the claim that picks it quarantines the task.
local function ready_member(seq, id)
  return string.format('%016d', whole(seq, 0) or 0) .. id
end

-- Lower score first, then lower member: priority-then-age for ready members, age for ids.
local function by_score(x, y)
  if x[1] ~= y[1] then
    return x[1] < y[1]
  end
  return x[2] < y[2]
end

-- Up to `n` {score, member, base} of the zset `suffix` of each base, appended to `picks`. A
-- key of the wrong type is skipped, noted in `problems` if given.
local function first_of(bases, suffix, n, picks, problems)
  for _, b in ipairs(bases) do
    local r = try(problems or {}, b .. suffix, 'ZRANGE', 0, n - 1, 'WITHSCORES') or {}
    for i = 1, #r, 2 do
      picks[#picks + 1] = {tonumber(r[i + 1]), r[i], b}
    end
  end
  return picks
end

local function all_bases()
  if ONE_QUEUE then
    return {KEYS[1]}
  end
  local bases = {}
  for _, queue in ipairs(redis.call('SMEMBERS', QUEUES)) do
    bases[#bases + 1] = base_of(queue)
  end
  return bases
end

-- Leave a token for one idle consumer, unless one is already there.
local function wake(b)
  if redis.call('LLEN', b .. 'wake') == 0 then
    redis.call('RPUSH', b .. 'wake', '1')
  end
end

local function make_ready(b, id, seq, priority)
  redis.call('ZADD', b .. 'ready', -(whole(priority) or 0), ready_member(seq, id))
  wake(b)
end

local function seconds(us)
  return string.format('%d.%06d', math.floor(us / 1000000), us % 1000000)
end

-- A history keeps the latest 20 attempts (base.HISTORY_LIMIT). Every entry starts with ENTRY,
-- which no value inside an entry can hold unescaped (cjson escapes quotes).
local HISTORY_LIMIT = 20
local ENTRY = '{"attempt":'

-- The history JSON list with one more attempt appended, its oldest ones dropped past the limit.
-- A stored history that is not a list is replaced by one `corrupt` entry quoting its start, so
-- that the write still lands.
local function record(history, attempt, outcome, now, consumer, detail)
  local number = whole(attempt or '0')
  local e = ENTRY .. (number and int(number) or 'null') .. ',"outcome":'
    .. cjson.encode(outcome) .. ',"at":' .. seconds(now) .. ',"consumer":'
    .. (consumer and cjson.encode(consumer) or 'null')
  if detail and detail ~= '' then
    e = e .. ',"detail":' .. cjson.encode(detail)
  end
  e = e .. '}'
  if not history or history == '[]' then
    return '[' .. e .. ']'
  end
  if string.sub(history, 1, 1) ~= '[' or string.sub(history, -1) ~= ']' then
    history = '[{"outcome":"corrupt","at":' .. seconds(now) .. ',"detail":'
      .. cjson.encode('unreadable history replaced: ' .. shown(history)) .. '}]'
  end
  local starts, at = {}, 1
  while true do
    at = string.find(history, ENTRY, at, true)
    if not at then
      break
    end
    starts[#starts + 1] = at
    at = at + #ENTRY
  end
  local keep = starts[#starts - HISTORY_LIMIT + 2] -- the oldest entry kept, if any goes
  if keep then
    history = '[' .. string.sub(history, keep)
  end
  return string.sub(history, 1, -2) .. ',' .. e .. ']'
end

-- What to do about a quarantined task (AFTER_CORRUPT in _records.py).
local AFTER_CORRUPT = 'it cannot run as stored: enqueue the task again with the same id '
  .. '(which replaces the record), or `scoter dead purge APP ID`'
-- Quarantine task `id` of the queue at `b`, whose record is unfit (`why`): dead with reason
-- `corrupt` (DESIGN G11), noted in `problems`. The caller takes it out of the index it was in.
local function quarantine(b, id, seq, why, now, problems)
  local tk = b .. 't:' .. id
  local error = 'corrupt record: ' .. why .. '; ' .. AFTER_CORRUPT
  local f = redis.call('HMGET', tk, 'attempts', 'history')
  redis.call('ZADD', b .. 'dead', whole(seq, 0) or now, id)
  redis.call('HSET', tk, 'state', 'dead', 'reason', 'corrupt', 'error', error,
    'updated_at', int(now), 'history', record(f[2], f[1], 'corrupt', now, nil, why))
  problems[#problems + 1] = 'task ' .. id
  problems[#problems + 1] = error
end

-- Note in `problems` that task `id`, with no record left to mark (gone, or not a hash), was
-- taken out of the index `key`.
local function dropped(id, key, problems)
  problems[#problems + 1] = 'task ' .. id
  problems[#problems + 1] = 'its record is gone or not a hash: removed from ' .. key
end

-- End the attempt holding `token`: its task leaves running for `state`, its token spent, with
-- the attempt in its history. Returns the task's key and id, or nil when the token holds no lease:
-- the fencing of every write an attempt makes.
local function settle(b, token, outcome, state, detail, now)
  local id = redis.call('HGET', b .. 'tokens', token)
  if not id then
    return nil
  end
  local tk = b .. 't:' .. id
  local f = redis.call('HMGET', tk, 'seq', 'priority', 'attempts', 'consumer', 'history')
  redis.call('HDEL', b .. 'tokens', token)
  redis.call('ZREM', b .. 'leases', id)
  if state == 'queued' then
    make_ready(b, id, f[1], f[2])
  else
    redis.call('ZADD', b .. state, whole(f[1], 0) or now, id)
  end
  redis.call('HSET', tk, 'state', state, 'updated_at', int(now),
    'history', record(f[5], f[3], outcome, now, f[4], detail))
  return tk, id
end

-- Writes of many members to one key, gathered so that each (command, key) is one call: `gather`
-- one member's values, then `flush` them all. Only for keys nothing reads before the flush.
local GATHER_VALUES = 1000 -- values per call: Lua's unpack takes a few thousand at most
local function gather(writes, command, key, a, b)
  local w = writes[command .. ' ' .. key]
  if not w then
    w = {command, key, {}}
    writes[command .. ' ' .. key] = w
    writes[#writes + 1] = w
  end
  local values = w[3]
  values[#values + 1] = a
  if b then
    values[#values + 1] = b
  end
end
local function flush(writes)
  for _, w in ipairs(writes) do
    local values = w[3]
    for first = 1, #values, GATHER_VALUES do
      local last = math.min(first + GATHER_VALUES - 1, #values)
      redis.call(w[1], w[2], unpack(values, first, last))
    end
  end
end

-- Running -> done for `count` acks: ack i has its queue's base in KEYS[key1 + i - 1] and 4
-- values in ARGV from first + (i - 1) * 4: token, has result ('1' or ''), result, result ttl
-- (µs, '' = forever). Appends 1, or 0 when the token holds no lease, per ack to `out`. Each
-- task is read and written once; the index writes of all of them are gathered.
local function ack_many(key1, first, count, now, out)
  local writes, spent = {}, {}
  for i = 1, count do
    local b, a = KEYS[key1 + i - 1], first + (i - 1) * 4
    local token, ttl = ARGV[a], ARGV[a + 3]
    local id = not spent[token] and redis.call('HGET', b .. 'tokens', token)
    local tk = id and b .. 't:' .. id
    -- a task key of the wrong type is left to rescue: its lease expires, unacknowledged
    local f = id and try({}, tk, 'HMGET', 'seq', 'attempts', 'consumer', 'history')
    out[#out + 1] = f and 1 or 0
    if f then
      spent[token] = true
      local fields = {'state', 'done', 'updated_at', int(now),
        'history', record(f[4], f[2], 'succeeded', now, f[3])}
      if ARGV[a + 1] == '1' then
        fields[#fields + 1], fields[#fields + 2] = 'result', ARGV[a + 2]
      end
      if ttl ~= '' then
        local expires = int(now + tonumber(ttl))
        fields[#fields + 1], fields[#fields + 2] = 'result_expires', expires
        gather(writes, 'ZADD', b .. 'expiry', expires, id)
      end
      redis.call('HSET', tk, unpack(fields))
      gather(writes, 'HDEL', b .. 'tokens', token)
      gather(writes, 'ZREM', b .. 'leases', id)
      gather(writes, 'ZADD', b .. 'done', whole(f[1], 0) or now, id)
    end
  end
  flush(writes)
end

-- The one crash rule, of crash.lua and rescue.lua: the attempt holding `token` died. Run alone
-- (isolate.lua), it is charged one crash: its task is queued again, or dead `crashed` once its
-- crashes reach max_crashes. So is any other when `spared` is nil (its holder saw it die), else
-- its task is queued as a suspect, crashes unchanged, with `spared` as its history detail.
-- Appends id, name, state, crashes, charged (1 or 0) to `out`, nothing when the token holds no
-- lease. A task whose crashes or max_crashes is not a number in range is quarantined instead.
local function crash(b, token, detail, spared, now, out, problems)
  local id = redis.call('HGET', b .. 'tokens', token)
  if not id then
    return
  end
  local tk = b .. 't:' .. id
  local f = redis.call('HMGET', tk, 'crashes', 'max_crashes', 'name', 'alone', 'seq')
  local before, most = whole(f[1] or '0', 0, COUNTER_MAX), whole(f[2])
  if not before or not most then
    local why = before and 'max_crashes is ' .. shown(f[2]) .. ', not a whole number'
      or 'crashes is ' .. shown(f[1]) .. ', not from 0 to ' .. COUNTER_MAX
    redis.call('HDEL', b .. 'tokens', token)
    redis.call('ZREM', b .. 'leases', id)
    quarantine(b, id, f[5], why, now, problems)
    return
  end
  local charged = f[4] == '1' or not spared
  local crashes = before + (charged and 1 or 0)
  local state = charged and crashes >= most and 'dead' or 'queued'
  settle(b, token, 'crashed', state, charged and detail or spared, now)
  if charged then
    redis.call('HSET', tk, 'crashes', crashes)
  else
    redis.call('HSET', tk, 'suspect', '1')
  end
  if state == 'dead' then
    redis.call('HSET', tk, 'reason', 'crashed',
      'error', 'crashed ' .. crashes .. ' time(s), the last one: ' .. detail)
  end
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4] = id, f[3] or '', state, crashes
  out[n + 5] = charged and 1 or 0
end

-- What keeps a ready task of the queue at `b` from running, from the fields lease reads (f:
-- queue, name, payload, errors, interruptions, crashes, checkpoint, attempts, suspect, seq,
-- priority, max_crashes): nil when nothing does. Counters may be absent (0).
local COUNTED = {[4] = 'errors', [5] = 'interruptions', [6] = 'crashes'}
local function unfit(b, f)
  local problems = {}
  if not f[1] or base_of(f[1]) ~= b then
    problems[#problems + 1] = 'queue is ' .. shown(f[1]) .. ', not the queue it is in'
  end
  for i, name in pairs({[2] = 'name', [3] = 'payload'}) do
    if not f[i] then
      problems[#problems + 1] = name .. ' is missing'
    end
  end
  for i, name in pairs(COUNTED) do
    if f[i] and not whole(f[i], 0, COUNTER_MAX) then
      problems[#problems + 1] = name .. ' is ' .. shown(f[i]) .. ', not from 0 to ' .. COUNTER_MAX
    end
  end
  if f[8] and not whole(f[8], 0, COUNTER_MAX - 1) then
    problems[#problems + 1] = 'attempts is ' .. shown(f[8]) .. ', not from 0 to '
      .. (COUNTER_MAX - 1)
  end
  for i, name in pairs({[10] = 'seq', [11] = 'priority', [12] = 'max_crashes'}) do
    if not whole(f[i], i == 10 and 0 or nil) then
      problems[#problems + 1] = name .. ' is ' .. shown(f[i]) .. ', not a whole number'
    end
  end
  if #problems > 0 then
    table.sort(problems)
    return table.concat(problems, '; ')
  end
  return nil
end

-- Lease one ready task (its member of `b`ready) and append its 13 lease fields to `out`; its
-- index writes go to `writes`. The attempt starts not alone. A task unfit to run is
-- quarantined instead, and one with no record left to mark taken out of ready (both noted in
-- `problems`): returns whether it leased the task.
local function lease(b, member, token, consumer, expires, now, out, writes, problems)
  local id = string.sub(member, SEQ_DIGITS + 1)
  local tk = b .. 't:' .. id
  local f = try({}, tk, 'HMGET', 'queue', 'name', 'payload', 'errors', 'interruptions',
    'crashes', 'checkpoint', 'attempts', 'suspect', 'seq', 'priority', 'max_crashes')
  gather(writes, 'ZREM', b .. 'ready', member)
  if not f or not f[1] and redis.call('EXISTS', tk) == 0 then
    dropped(id, b .. 'ready', problems)
    return false
  end
  local why = unfit(b, f)
  if why then
    quarantine(b, id, f[10], why, now, problems)
    return false
  end
  local attempt = (whole(f[8]) or 0) + 1
  token = token .. f[1]
  gather(writes, 'HSET', b .. 'tokens', token, id)
  gather(writes, 'ZADD', b .. 'leases', expires, id)
  redis.call('HSET', tk, 'state', 'running', 'token', token, 'consumer', consumer,
    'lease_expires', int(expires), 'attempts', attempt, 'progress', '', 'alone', '0',
    'updated_at', int(now))
  local n = #out
  out[n + 1], out[n + 2], out[n + 3], out[n + 4], out[n + 5] = token, id, f[2], f[1], f[3]
  out[n + 6], out[n + 7] = attempt, whole(f[4]) or 0
  out[n + 8], out[n + 9] = whole(f[5]) or 0, whole(f[6]) or 0
  out[n + 10], out[n + 11] = f[7], f[9] == '1' and 1 or 0
  out[n + 12], out[n + 13] = whole(f[11]), whole(f[12])
  return true
end
