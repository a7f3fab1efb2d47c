-- The second half of the scripts' library, after lib.lua (its blocks may use lib.lua's):
-- claims under task limits, sweeps in batches, locks.

-- How many tasks of limited task `name` run now: the tokens of P:running:<name> that still
-- hold a lease (a token names its queue); the others are dropped.
local function running_of(name)
  local key = PREFIX .. ':running:' .. name
  local n = 0
  for _, token in ipairs(redis.call('SMEMBERS', key)) do
    if redis.call('HEXISTS', base_of(string.sub(token, TOKEN_HEX + 1)) .. 'tokens', token) == 1 then
      n = n + 1
    else
      redis.call('SREM', key, token)
    end
  end
  return n
end

-- The uses of `key` (P:starts:<key>) in the `per` µs before `now`, older ones dropped: how
-- many, and the time of the oldest.
local function window(key, per, now)
  local zset = PREFIX .. ':starts:' .. key
  redis.call('ZREMRANGEBYSCORE', zset, '-inf', now - per)
  local oldest = redis.call('ZRANGE', zset, 0, 0, 'WITHSCORES')
  return redis.call('ZCARD', zset), tonumber(oldest[2])
end

-- Each stored limit: {name, concurrency, rate, per µs} (nil where none), by name.
local function limits_of()
  local raw, limits = redis.call('HGETALL', LIMITS), {}
  for i = 1, #raw, 2 do
    local c, r, p = string.match(raw[i + 1], '^([^,]*),([^,]*),([^,]*)$')
    limits[raw[i]] = {raw[i], tonumber(c), tonumber(r), tonumber(p)}
  end
  return limits
end

-- How many tasks of each limited name one claim may lease now (see _limits.py: allowances).
local function allowances(limits, now)
  local allowed = {}
  for name, l in pairs(limits) do
    local left = math.huge
    if l[2] then
      left = math.min(left, l[2] - running_of(name))
    end
    if l[3] then
      left = math.min(left, l[3] - window(name, l[4] or 0, now))
    end
    allowed[name] = math.max(0, left)
  end
  return allowed
end

-- The most queued tasks a claim under limits looks at, past those whose limit holds them.
local LOOK_MAX = 1000

-- The members of the first ready tasks of `bases` (up to `look` of each, in claim order) that
-- the limits let start, at most n: {member, base} each; and whether a task was left for its
-- limit.
local function within_limits(bases, n, look, allowed, problems)
  local picks = first_of(bases, 'ready', look, {}, problems)
  if #bases > 1 then
    table.sort(picks, by_score)
  end
  local left, chosen, held = {}, {}, false
  for name, a in pairs(allowed) do
    left[name] = a
  end
  for _, p in ipairs(picks) do
    if #chosen >= n then
      break
    end
    local name = try({}, p[3] .. 't:' .. string.sub(p[2], SEQ_DIGITS + 1), 'HGET', 'name')
    local a = name and left[name]
    if a == 0 then
      held = true
    else
      chosen[#chosen + 1] = {p[2], p[3]}
      if a then
        left[name] = a - 1
      end
    end
  end
  return chosen, held, #picks >= look
end

-- within_limits, looking further while tasks are left for their limits, up to LOOK_MAX.
local function choose(bases, n, allowed, problems)
  local look = n + 16
  local chosen, held, more = within_limits(bases, n, look, allowed, problems)
  while #chosen < n and held and more and look < LOOK_MAX do
    look = math.min(look * 4, LOOK_MAX)
    chosen, held, more = within_limits(bases, n, look, allowed, problems)
  end
  return chosen, held
end

-- Lease the tasks `chosen` ({member, base} each, see within_limits) as claim does.
local function lease_chosen(chosen, first, consumer, expires, now, out, problems)
  local writes = {}
  for i, c in ipairs(chosen) do
    lease(c[2], c[1], ARGV[first + i - 1], consumer, expires, now, out, writes, problems)
  end
  flush(writes)
end

-- The claim while limits are stored: as claim below, leasing only what the limits let start
-- (choose), each limited task's token kept in P:running:<name> and, under a rate, its start in
-- P:starts:<name>. Returns whether it left a task for its limit with fewer than n leased.
local function claim_limited(bases, n, first, consumer, expires, now, out, problems)
  local limits = limits_of()
  local chosen, held = choose(bases, n, allowances(limits, now), problems)
  local before = #out
  lease_chosen(chosen, first, consumer, expires, now, out, problems)
  for k = before + 1, #out, 13 do
    local l = limits[out[k + 2]]
    if l then
      redis.call('SADD', PREFIX .. ':running:' .. l[1], out[k])
      if l[3] then
        redis.call('ZADD', PREFIX .. ':starts:' .. l[1], now, out[k])
      end
    end
  end
  return held and #chosen < n
end

-- Lease up to n ready tasks of the queues at `bases`, highest priority first, then oldest,
-- each with a token from `tokens` (ARGV from index `first`). Appends the leases to `out`, and
-- what it quarantined or skipped to `problems`. While limits are stored, claim_limited leases
-- instead: returns whether it left tasks for their limits (then no consumer should wake for
-- them).
local function claim(bases, n, first, consumer, expires, now, out, problems)
  -- on a Redis Cluster P:limits is another slot's key: the error reads as no limits (there are
  -- none there: RedisClusterStorage keeps no limits)
  if redis.pcall('EXISTS', LIMITS) == 1 then
    return claim_limited(bases, n, first, consumer, expires, now, out, problems)
  end
  local picks = first_of(bases, 'ready', n, {}, problems)
  if #bases > 1 then
    table.sort(picks, by_score)
  end
  local writes = {}
  for i = 1, math.min(n, #picks) do
    local b, member, token = picks[i][3], picks[i][2], ARGV[first + i - 1]
    lease(b, member, token, consumer, expires, now, out, writes, problems)
  end
  flush(writes)
  return false
end

-- After a claim that may have followed a wake-up: leave a token while work remains, so the
-- next idle consumer takes the rest; drop it once the ready set is empty, so none wakes for
-- nothing.
local function rewake(bases)
  for _, b in ipairs(bases) do
    if redis.call('EXISTS', b .. 'ready') == 1 then
      wake(b)
    else
      redis.call('DEL', b .. 'wake')
    end
  end
end

-- Delete task `id` (in `state`) and every index entry of it. With `writes` (see gather), the
-- index writes are gathered there for the caller to flush: many tasks in a few calls.
local function forget(b, id, state, writes)
  local w = writes or {}
  local tk = b .. 't:' .. id
  local f = try({}, tk, 'HMGET', 'seq', 'token', 'unique') or {}
  if f[3] and redis.call('HGET', UNIQUE, f[3]) == id then
    gather(w, 'HDEL', UNIQUE, f[3])
  end
  if state == 'queued' then
    gather(w, 'ZREM', b .. 'ready', ready_member(f[1], id))
  else
    gather(w, 'ZREM', b .. INDEX[state], id)
  end
  if state == 'scheduled' then
    gather(w, 'ZREM', b .. 'due', id)
  elseif state == 'running' and f[2] then
    gather(w, 'HDEL', b .. 'tokens', f[2])
  elseif state == 'done' then
    gather(w, 'ZREM', b .. 'expiry', id)
  end
  redis.call('DEL', tk)
  if ONE_QUEUE then
    gather(w, 'RPUSH', b .. 'forgotten', id)
  else
    gather(w, 'HDEL', IDS, id)
  end
  if not writes then
    flush(w)
  end
end

-- The ids of the first `n` tasks of the queue at `b` in `state`.
local function ids_in(b, state, n)
  local ids = redis.call('ZRANGE', b .. INDEX[state], 0, n - 1)
  if state == 'queued' then
    for i, member in ipairs(ids) do
      ids[i] = string.sub(member, SEQ_DIGITS + 1)
    end
  end
  return ids
end

-- Call fn(b, id) for each task in `state`: the ids in ARGV[first..] if any (each once), else up
-- to `limit` of them (one batch of a maintenance step: fn must take the task out of `state`, or
-- gather writes that do). Returns how many it called fn for.
local function each_in(state, first, limit, fn)
  local n = 0
  if #ARGV < first then
    for _, b in ipairs(all_bases()) do
      if n >= limit then
        break
      end
      for _, id in ipairs(ids_in(b, state, limit - n)) do
        fn(b, id)
        n = n + 1
      end
    end
    return n
  end
  local seen = {}
  for i = first, #ARGV do
    local queue = not seen[ARGV[i]] and (ONE_QUEUE or redis.call('HGET', IDS, ARGV[i]))
    seen[ARGV[i]] = true
    local b = queue and (ONE_QUEUE and KEYS[1] or base_of(queue))
    if b and redis.call('HGET', b .. 't:' .. ARGV[i], 'state') == state then
      fn(b, ARGV[i])
      n = n + 1
    end
  end
  return n
end

-- Call fn(b, id) for up to `limit` members of the zset `suffix` of every queue whose score is
-- at most `max` (a ZRANGEBYSCORE bound): one batch of a maintenance step (promote, rescue,
-- expire_results); fn must take the member out of the zset, or gather writes that do. A zset
-- of the wrong type skips its queue (noted in `problems`). Returns how many members it took.
local function batch_of(suffix, max, limit, problems, fn)
  local n = 0
  for _, b in ipairs(all_bases()) do
    if n >= limit then
      break
    end
    local ids = try(problems, b .. suffix, 'ZRANGEBYSCORE', '-inf', max, 'LIMIT', 0, limit - n)
    for _, id in ipairs(ids or {}) do
      fn(b, id)
      n = n + 1
    end
  end
  return n
end

-- Whether a lock is held at `now`, from its fields owner, task, token, expires (false when
-- absent): its expiry has not passed and, when held under a task's lease, that task still
-- holds the lease (its token in its queue's tokens) and the lease has not expired.
local function lock_held(f, now)
  if not f[1] or f[4] and tonumber(f[4]) < now then
    return false
  end
  if not f[2] then
    return true
  end
  local b = base_of(string.sub(f[3] or '', TOKEN_HEX + 1))
  if try({}, b .. 'tokens', 'HGET', f[3]) ~= f[2] then
    return false
  end
  local lease = try({}, b .. 'leases', 'ZSCORE', f[2])
  return lease and tonumber(lease) >= now or false
end
