-- slot_advance: on a Redis Cluster, where a slot's tasks live on other slots than the periodic
-- hash, the first of the two steps of enqueue_slot (redis_cluster.py): advance the schedule's
-- last slot by compare-and-set and, only when that holds, keep the slot's tasks as pending in
-- the same step. The caller then enqueues them and settles (slot_settle.lua); a pending entry
-- left by a caller that died between is enqueued by the next reader of the schedule (enqueue
-- leaves a stored id as it is, so an entry enqueued twice stores its tasks once).
-- KEYS: P:periodic: schedule -> last slot, and 'pending <schedule>' -> the tasks, encoded.
-- ARGV: prefix, schedule, its last slot as the caller read it ('' for none), the new slot,
--       the encoded tasks ('' for none)
-- Returns: 1 when the slot was advanced, else 0 (nothing changed).

local schedule = ARGV[2]
if (redis.call('HGET', KEYS[1], schedule) or '') ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], schedule, ARGV[4])
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[1], 'pending ' .. schedule, ARGV[5])
end
return 1
