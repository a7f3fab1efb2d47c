-- list: the oldest tasks in a state, of the given queues or of all (read only).
-- KEYS: P:queues; for each queue, the state's sorted set (ready, leases, scheduled, done or
--       dead) and P:{q}:t:<id>.
-- ARGV: prefix, state, limit (> 0), then the queues (none: every queue)
-- Returns: per task its id, then its hash as field, value pairs (none when its key is not a
--          hash). Keys of the wrong type are skipped.

local state, limit = ARGV[2], tonumber(ARGV[3])

-- The oldest `limit` queued tasks of `b` as {seq, id, b}: ready sorts by priority first, so
-- take the oldest of each priority (equal scores sort by member, which starts with the seq).
local function oldest_queued(b, picks)
  local from = '-inf'
  while true do
    local first = try({}, b .. 'ready', 'ZRANGEBYSCORE', from, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if not first or #first == 0 then
      return
    end
    local score = first[2]
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', b .. 'ready', score, score, 'LIMIT', 0, limit)) do
      picks[#picks + 1] = {tonumber(string.sub(m, 1, SEQ_DIGITS)) or 0, string.sub(m, SEQ_DIGITS + 1), b}
    end
    from = '(' .. score
  end
end

-- Every running task of `b` as {seq, id, b} (they are few: one per busy worker).
local function running(b, picks)
  for _, id in ipairs(try({}, b .. 'leases', 'ZRANGE', 0, -1) or {}) do
    picks[#picks + 1] = {whole(try({}, b .. 't:' .. id, 'HGET', 'seq'), 0) or 0, id, b}
  end
end

local bases = {}
for i = 4, #ARGV do
  bases[#bases + 1] = base_of(ARGV[i])
end
if #bases == 0 then
  bases = all_bases()
end
local picks = {}
for _, b in ipairs(bases) do
  if state == 'queued' then
    oldest_queued(b, picks)
  elseif state == 'running' then
    running(b, picks)
  else
    first_of({b}, state, limit, picks)
  end
end
table.sort(picks, by_score)
local out = {}
for i = 1, math.min(limit, #picks) do
  out[#out + 1] = picks[i][2]
  out[#out + 1] = try({}, picks[i][3] .. 't:' .. picks[i][2], 'HGETALL') or {}
end
return out
