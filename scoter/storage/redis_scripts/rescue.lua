-- rescue: requeue up to `limit` running tasks whose lease expired before now (one batch of
-- Storage.rescue), by the crash rule (crash in lib.lua): an attempt run alone counts a crash
-- (dead with reason `crashed` once its crashes reach max_crashes); any other counts none and
-- its task is queued as a suspect.
-- KEYS: P:queues; for each queue in it, P:{q}: leases, tokens, ready and wake or dead, and
--       t:<id>.
-- ARGV: prefix, now as µs from the server's clock, detail of a charged crash, detail of one
--       not charged, limit
-- Returns: 5 fields per task moved: id, name, new state, crashes, charged (1 or 0).

local now = now_us() + tonumber(ARGV[2])
local out = {}
batch_of('leases', '(' .. int(now), tonumber(ARGV[5]), function(b, id)
  crash(b, redis.call('HGET', b .. 't:' .. id, 'token'), ARGV[3], ARGV[4], now, out)
end)
return out
