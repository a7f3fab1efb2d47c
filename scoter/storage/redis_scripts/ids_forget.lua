-- ids_forget: take ids out of one bucket of a Redis Cluster's id directory (redis_cluster.py)
-- where it still names the queue they were deleted from (an id enqueued on another queue since
-- is left to that queue).
-- KEYS: P:ids:<bucket>, a hash: task id -> queue.
-- ARGV: prefix, then 2 per id: id, the queue it was deleted from
-- Returns: how many ids it took out.

local taken = 0
for i = 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
    taken = taken + 1
  end
end
return taken
