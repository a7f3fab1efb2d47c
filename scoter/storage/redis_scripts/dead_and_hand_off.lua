-- dead_and_hand_off: on a Redis Cluster, the first of the two steps of dead_and_enqueue
-- (redis_cluster.py): dead.lua (whose text runs here as `dead_script`), and, only when the
-- token held its lease, keep the error handler to store in P:{q}:handoffs (as
-- ack_and_hand_off.lua keeps an ack's hand-off).
-- KEYS: P:{q}: of the token's queue; touches what dead.lua touches and P:{q}:handoffs.
-- ARGV: prefix, token, reason, has error ('1' or ''), error, history detail (as dead.lua), then
--       the hand-off
-- Returns: 1, or 0 when the token holds no lease (nothing is kept).

if dead_script() == 0 then
  return 0
end
redis.call('HSET', KEYS[1] .. 'handoffs', ARGV[2], ARGV[7])
return 1
