-- get: one task's fields (read only).
-- KEYS: P:ids; then P:{q}:t:<id> of the queue it names.
-- ARGV: prefix, id
-- Returns: the task hash as field, value pairs, or nil when there is no such task; when its
--          key is not a hash, one value: the error.

local queue = redis.call('HGET', IDS, ARGV[2])
if not queue then
  return nil
end
local fields = redis.pcall('HGETALL', base_of(queue) .. 't:' .. ARGV[2])
if fields.err then
  return {fields.err}
end
return fields
