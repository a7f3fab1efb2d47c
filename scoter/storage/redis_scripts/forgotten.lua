-- forgotten: take up to `limit` ids out of the queue's list of deleted tasks (see forget in
-- lib.lua), for the caller to take out of a Redis Cluster's id directory; an id whose task was
-- stored again in this queue since keeps its directory entry and is left out.
-- KEYS: P:{q}: of the queue; touches its forgotten and t:<id> keys.
-- ARGV: prefix, limit
-- Returns: the ids to take out of the directory, then (last) how many were taken off the list.

local b = KEYS[1]
local ids = redis.call('LRANGE', b .. 'forgotten', 0, tonumber(ARGV[2]) - 1)
if #ids == 0 then
  return {0}
end
redis.call('LTRIM', b .. 'forgotten', #ids, -1)
local out = {}
for _, id in ipairs(ids) do
  if redis.call('EXISTS', b .. 't:' .. id) == 0 then
    out[#out + 1] = id
  end
end
out[#out + 1] = #ids
return out
