-- lock_release: free a lock if the owner's; fenced: another owner's lock stays.
-- KEYS: P:lock:<name>, P:locks; under a lease, its queue's tokens and leases.
-- ARGV: prefix, name, owner
-- Returns: 1 when the owner held it until now, 0 when not (a lapsed lock of its own is freed).

local f = redis.call('HMGET', KEYS[1], 'owner', 'task', 'token', 'expires')
if f[1] ~= ARGV[3] then
  return 0
end
local held = lock_held(f, now_us())
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[2])
return held and 1 or 0
