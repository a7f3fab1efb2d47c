-- ack: running -> done, storing the result; fenced by the lease token.
-- KEYS: P:{q}: of the token's queue; touches its tokens, leases, done, expiry and t:<id>
--       keys.
-- ARGV: prefix, token, has result ('1' or ''), result, result ttl (µs, '' = forever)
-- Returns: 1, or 0 when the token holds no lease.

local out = {}
ack_many(1, 2, 1, now_us(), out)
return out[1]
