-- revocations: every name revocation, and the ids of live tasks revoked while running (a
-- record whose task ended, is gone, or was enqueued anew since is deleted).
-- KEYS: P:ids, P:revocations; for each id record, P:{q}:t:<id>.
-- ARGV: prefix
-- Returns: {names: name, its record ('<until>|<once>') for each; ids}.

local REVOCATIONS = KEYS[2]
local names, ids = {}, {}
local LIVE = {scheduled = true, queued = true, running = true}
local records = redis.call('HGETALL', REVOCATIONS)
for i = 1, #records, 2 do
  local field, value = records[i], records[i + 1]
  if string.sub(field, 1, 5) == 'task:' then
    names[#names + 1] = string.sub(field, 6)
    names[#names + 1] = value
  elseif string.sub(field, 1, 3) == 'id:' then
    local id = string.sub(field, 4)
    local queue = redis.call('HGET', IDS, id)
    local f = queue and try({}, base_of(queue) .. 't:' .. id, 'HMGET', 'state', 'created_at')
    if f and LIVE[f[1]] and (f[2] or '') == value then
      ids[#ids + 1] = id
    else
      redis.call('HDEL', REVOCATIONS, field)
    end
  end
end
return {names, ids}
