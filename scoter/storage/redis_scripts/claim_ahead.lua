-- claim_ahead: as claim.lua, for tasks claimed ahead of a free worker: only tasks of names
-- without limits (P:limits) are leased, the others left queued. Like ack_many_and_claim it
-- leaves the wake-up list alone: a consumer claiming ahead was not woken.
-- KEYS: the base P:{q}: of each queue; touches its ready, leases, tokens and t:<id> keys.
-- ARGV: prefix, n, lease (µs), consumer id, then n random token prefixes
-- Returns: as claim.lua.

local now = now_us()
local expires = now + tonumber(ARGV[3])
local n = tonumber(ARGV[2])
local problems = {}
local out = {int(expires), problems}
local none = {}
for name in pairs(limits_of()) do
  none[name] = 0
end
local chosen = choose(KEYS, n, none, problems)
lease_chosen(chosen, 5, ARGV[4], expires, now, out, problems)
return out
