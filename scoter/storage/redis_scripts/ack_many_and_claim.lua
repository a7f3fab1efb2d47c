-- ack_many_and_claim: ack each token (as ack.lua), then claim (as claim.lua) whether or not the
-- acks landed: a settler's group commit in one call, each index written once for the group.
-- Unlike claim.lua it leaves the wake-up list alone: a worker that claims as it acks was not
-- woken, so it owes no token to the next idle consumer; a token it leaves behind once the queue
-- is empty costs one consumer one empty claim.
-- KEYS: P:{q}: of each ack's token queue (one per ack, in order), then P:{q}: of each queue to
--       claim from; touches their tokens, leases, done, expiry, ready and t:<id> keys.
-- ARGV: prefix, number of acks, n, lease (µs), consumer id, then 4 per ack: token,
--       has result ('1' or ''), result, result ttl (µs, '' = forever); then n random token
--       prefixes
-- Returns: 1 or 0 per ack (acked), the lease expiry (µs), the problems, then 13 fields per lease
--          as claim.lua.

local now = now_us()
local acks, n = tonumber(ARGV[2]), tonumber(ARGV[3])
local expires = now + tonumber(ARGV[4])
local out, problems = {}, {}
ack_many(1, 6, acks, now, out)
out[acks + 1], out[acks + 2] = int(expires), problems
if n > 0 then
  local bases = {}
  for i = acks + 1, #KEYS do
    bases[#bases + 1] = KEYS[i]
  end
  claim(bases, n, 6 + acks * 4, ARGV[5], expires, now, out, problems)
end
return out
