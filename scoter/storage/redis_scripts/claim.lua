-- claim: move up to n queued tasks of the given queues to running, each with a new lease.
-- KEYS: the base P:{q}: of each queue; touches its ready, leases, tokens, wake and t:<id>
--       keys.
-- ARGV: prefix, n, lease (µs), consumer id, then n random token prefixes
-- Returns: the lease expiry (µs), the problems (see lib.lua: tasks quarantined or dropped, keys
--          skipped), then 13 fields per lease: token, id, name, queue, payload, attempt, errors,
--          interruptions, crashes, checkpoint (nil when none), suspect (1 or 0), priority,
--          max_crashes.

local now = now_us()
local expires = now + tonumber(ARGV[3])
local problems = {}
local out = {int(expires), problems}
if claim(KEYS, tonumber(ARGV[2]), 5, ARGV[4], expires, now, out, problems) then
  for _, b in ipairs(KEYS) do -- what is left waits for its limit: no consumer wakes for it
    redis.call('DEL', b .. 'wake')
  end
else
  rewake(KEYS)
end
return out
