-- locks: the locks held now, or free them (flush).
-- KEYS: P:locks; each P:lock:<name> and, under a lease, its queue's tokens and leases.
-- ARGV: prefix, flush ('1': free every lock named, held or not), then the names (none: all)
-- Returns: 5 fields per lock held: name, holder, task id (false outside a task), when it is
--          freed unless renewed (µs: its expiry or its lease's, the earlier; false: never),
--          since (µs). A name whose key is gone leaves P:locks.

local now = now_us()
local names = {unpack(ARGV, 3)}
if #names == 0 then
  names = redis.call('SMEMBERS', KEYS[1])
end
local out = {}
for _, name in ipairs(names) do
  local key = PREFIX .. ':lock:' .. name
  local f = try({}, key, 'HMGET', 'owner', 'task', 'token', 'expires', 'holder', 'since') or {}
  if lock_held(f, now) then
    local ends = tonumber(f[4])
    if f[2] then
      local lease = tonumber(redis.call('ZSCORE',
        base_of(string.sub(f[3], TOKEN_HEX + 1)) .. 'leases', f[2]))
      ends = ends and math.min(ends, lease) or lease
    end
    local n = #out
    out[n + 1], out[n + 2], out[n + 3] = name, f[5] or '', f[2]
    out[n + 4], out[n + 5] = ends and int(ends) or false, f[6] or '0'
  end
  if ARGV[2] == '1' or not f[1] then
    redis.call('DEL', key)
    redis.call('SREM', KEYS[1], name)
  end
end
return out
