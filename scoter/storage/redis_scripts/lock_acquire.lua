-- lock_acquire: take a lock unless it is held (lock_held in lib.lua).
-- KEYS: P:lock:<name>, P:locks; under a lease, its queue's tokens and leases.
-- ARGV: prefix, name, owner, task id, lease token (both '' outside a task), ttl (µs, '' for
--       none), holder
-- Returns: 1 when the owner holds the lock now, 0 when another does (or its own lease is gone).

local now = now_us()
local key = KEYS[1]
if lock_held(redis.call('HMGET', key, 'owner', 'task', 'token', 'expires'), now) then
  return 0
end
local task, token = ARGV[4] ~= '' and ARGV[4], ARGV[5] ~= '' and ARGV[5]
local expires = ARGV[6] ~= '' and int(now + tonumber(ARGV[6]))
if not lock_held({ARGV[3], task, token, expires}, now) then
  return 0
end
redis.call('DEL', key)
redis.call('HSET', key, 'owner', ARGV[3], 'holder', ARGV[7], 'since', int(now))
if task then
  redis.call('HSET', key, 'task', task, 'token', token)
end
if expires then
  redis.call('HSET', key, 'expires', expires)
end
redis.call('SADD', KEYS[2], ARGV[2])
return 1
