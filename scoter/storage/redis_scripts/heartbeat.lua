-- heartbeat: extend every lease named to now + lease, in one step.
-- KEYS: P:{q}: of each queue the tokens belong to; touches its tokens, leases and t:<id> keys.
-- ARGV: prefix, lease (µs), then for each KEYS[i] in order: a count c, then c tokens
-- Returns: the tokens no longer held.

local expires = now_us() + tonumber(ARGV[2])
local lost = {}
local j = 3
for _, b in ipairs(KEYS) do
  local last = j + tonumber(ARGV[j])
  for k = j + 1, last do
    local id = redis.call('HGET', b .. 'tokens', ARGV[k])
    if id then
      redis.call('ZADD', b .. 'leases', expires, id)
      redis.call('HSET', b .. 't:' .. id, 'lease_expires', int(expires))
    else
      lost[#lost + 1] = ARGV[k]
    end
  end
  j = last + 1
end
return lost
