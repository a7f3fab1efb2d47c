-- ack_and_claim: ack (as ack.lua), then claim (as claim.lua) whether or not the ack landed.
-- Unlike claim.lua it leaves the wake-up list alone: a worker that claims as it acks was not
-- woken, so it owes no token to the next idle consumer; a token it leaves behind once the
-- queue is empty costs one consumer one empty claim.
-- KEYS: P:{q}: of the token's queue, then P:{q}: of each queue to claim from.
-- ARGV: prefix, token, has result ('1' or ''), result, result ttl (µs, '' = forever),
--       n, lease (µs), consumer id, then n random token prefixes
-- Returns: 1 or 0 (acked), the lease expiry (µs), then 10 fields per lease as claim.lua.

local now = now_us()
local expires = now + tonumber(ARGV[7])
local out = {ack(KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], now), int(expires)}
local bases = {}
for i = 2, #KEYS do
  bases[i - 1] = KEYS[i]
end
claim(bases, tonumber(ARGV[6]), 9, ARGV[8], expires, now, out)
return out
