-- take_revocation: delete the `once` revocation of a task name, atomically.
-- KEYS: P:revocations
-- ARGV: prefix, name
-- Returns: 1 when this call deleted it, else 0.

local field = 'task:' .. ARGV[2]
local value = redis.call('HGET', KEYS[1], field)
if value and string.sub(value, -2) == '|1' then
  redis.call('HDEL', KEYS[1], field)
  return 1
end
return 0
