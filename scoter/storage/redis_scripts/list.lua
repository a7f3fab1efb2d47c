-- list: the oldest tasks in a state, of the given queues or of all (read only).
-- KEYS: P:queues; for each queue, P:{q}:<state> and P:{q}:t:<id>.
-- ARGV: prefix, state, limit (> 0), then the queues (none: every queue)
-- Returns: per task its id, then its hash as field, value pairs.

local bases = {}
for i = 4, #ARGV do
  bases[#bases + 1] = base_of(ARGV[i])
end
if #bases == 0 then
  bases = all_bases()
end
local limit = tonumber(ARGV[3])
local picks = first_of(bases, ARGV[2], limit)
local out = {}
for i = 1, math.min(limit, #picks) do
  out[#out + 1] = picks[i][2]
  out[#out + 1] = redis.call('HGETALL', picks[i][3] .. 't:' .. picks[i][2])
end
return out
