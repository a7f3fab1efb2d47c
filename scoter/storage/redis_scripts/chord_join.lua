-- chord_join: on a Redis Cluster, count a chord member down on the chord's own slot, once per
-- member index; the member that completes the count keeps the chord's callback in the hash,
-- pending, in the same step. The caller stores the callback and then deletes the field; a
-- second call for a member already counted changes nothing and returns the callback still
-- pending, if any, so that a caller that died before storing it is made up for.
-- KEYS: P:chord:{<id>}, the chord's hash: size, done, r<index> per finished member (its
--       result), callback while it is pending.
-- ARGV: prefix, member index, size, the member's result, the callback (encoded)
-- Returns: the pending callback, or nil.

local key = KEYS[1]
if redis.call('HSETNX', key, 'r' .. ARGV[2], ARGV[4]) == 1 then
  redis.call('HSETNX', key, 'size', ARGV[3])
  if redis.call('HINCRBY', key, 'done', 1) == tonumber(redis.call('HGET', key, 'size')) then
    redis.call('HSET', key, 'callback', ARGV[5])
  end
end
return redis.call('HGET', key, 'callback')
