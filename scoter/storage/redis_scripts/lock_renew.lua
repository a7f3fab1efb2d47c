-- lock_renew: extend a lock its owner holds to now + ttl; fenced by the owner.
-- KEYS: P:lock:<name>; under a lease, its queue's tokens and leases.
-- ARGV: prefix, owner, ttl (µs)
-- Returns: 1, or 0 when the owner does not hold it (lapsed, taken, flushed).

local now = now_us()
local f = redis.call('HMGET', KEYS[1], 'owner', 'task', 'token', 'expires')
if f[1] ~= ARGV[2] or not lock_held(f, now) then
  return 0
end
redis.call('HSET', KEYS[1], 'expires', int(now + tonumber(ARGV[3])))
return 1
