-- ids_take: enter task ids in one bucket of a Redis Cluster's id directory (redis_cluster.py),
-- before their tasks are stored: an id is taken for a queue when the bucket names no queue for
-- it, that queue, or the queue the caller found it could leave (see id_leave.lua).
-- KEYS: P:ids:<bucket>, a hash: task id -> queue.
-- ARGV: prefix, then 3 per id: id, queue, the queue it may be taken from ('' for none)
-- Returns: per id, '' when it is taken, else the queue the bucket names for it.

local out = {}
for i = 2, #ARGV, 3 do
  local id, queue, from = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local known = redis.call('HGET', KEYS[1], id)
  if not known or known == queue or known == from then
    if known ~= queue then
      redis.call('HSET', KEYS[1], id, queue)
    end
    known = ''
  end
  out[#out + 1] = known
end
return out
