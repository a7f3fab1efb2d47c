-- enqueue_slot: advance a periodic schedule's last slot by compare-and-set and, only when that
-- holds, store the slot's tasks as enqueue.lua does, in the same step. enqueue.lua follows this
-- script in the one sent to Redis (see _load_scripts), reading the ARGV left once the
-- schedule's three are taken out.
-- KEYS: P:periodic, then those of enqueue.lua: P:ids, P:queues and each task's queue keys.
-- ARGV: prefix, restart ('0': a stored id is left as it is), schedule, its last slot as the
--       caller read it ('' for none), the new slot, then 7 per task as enqueue.lua takes them
-- Returns: -1 when the stored last slot differed (nothing changed), else enqueue.lua's count.

local PERIODIC = PREFIX .. ':periodic'
local schedule = table.remove(ARGV, 3)
local last = table.remove(ARGV, 3)
local slot = table.remove(ARGV, 3)
if (redis.call('HGET', PERIODIC, schedule) or '') ~= last then
  return -1
end
redis.call('HSET', PERIODIC, schedule, slot)
