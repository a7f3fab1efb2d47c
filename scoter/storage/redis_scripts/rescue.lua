-- rescue: requeue every running task whose lease expired before now, by the crash rule (crash
-- in lib.lua): an attempt run alone counts a crash (dead with reason `crashed` once its crashes
-- reach max_crashes); any other counts none and its task is queued as a suspect.
-- KEYS: P:queues; for each queue in it, P:{q}: leases, tokens, ready and wake or dead, and
--       t:<id>.
-- ARGV: prefix, now as µs from the server's clock, detail of a charged crash, detail of one
--       not charged
-- Returns: 5 fields per task moved: id, name, new state, crashes, charged (1 or 0).

local now = now_us() + tonumber(ARGV[2])
local out = {}
for _, b in ipairs(all_bases()) do
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', b .. 'leases', '-inf', '(' .. int(now))) do
    crash(b, redis.call('HGET', b .. 't:' .. id, 'token'), ARGV[3], ARGV[4], now, out)
  end
end
return out
