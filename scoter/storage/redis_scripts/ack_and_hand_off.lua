-- ack_and_hand_off: on a Redis Cluster, where a flow's next step, chord and handler live on
-- other slots than the queue of the step that hands them on, the first of the two steps of an
-- ack with flows (redis_cluster.py): ack the acks of one queue (as ack.lua), and keep the
-- hand-off of each that landed in the queue's P:{q}:handoffs in the same step. The caller then
-- stores what the hand-off names and deletes it; one its caller left (it died between) is
-- completed by a rescue. Each part of that is idempotent (see _redis_cluster_flows.py).
-- KEYS: P:{q}: of the acks' queue, once per ack; touches what ack.lua touches and
--       P:{q}:handoffs (hash: the ack's token -> its hand-off, encoded).
-- ARGV: prefix, number of acks, 4 per ack as ack_many_and_claim.lua takes them, then 2 per
--       ack: its token ('' when it hands nothing on) and its hand-off
-- Returns: 1 or 0 per ack (acked).

local acks = tonumber(ARGV[2])
local out = {}
ack_many(1, 3, acks, now_us(), out)
for i = 1, acks do
  local at = 3 + acks * 4 + (i - 1) * 2
  if out[i] == 1 and ARGV[at] ~= '' then
    redis.call('HSET', KEYS[1] .. 'handoffs', ARGV[at], ARGV[at + 1])
  end
end
return out
