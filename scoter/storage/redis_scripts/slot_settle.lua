-- slot_settle: the pending tasks of a schedule's slot were enqueued (see slot_advance.lua):
-- forget them, unless a later slot's tasks replaced them since.
-- KEYS: P:periodic
-- ARGV: prefix, schedule, the encoded tasks that were enqueued
-- Returns: 1 when they were still pending, else 0.

local field = 'pending ' .. ARGV[2]
if redis.call('HGET', KEYS[1], field) == ARGV[3] then
  redis.call('HDEL', KEYS[1], field)
  return 1
end
return 0
