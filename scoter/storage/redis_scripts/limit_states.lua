-- limit_states: the stored limits, with how near each is now.
-- KEYS: P:limits; each P:running:<name> and P:starts:<name>, and the queues' tokens.
-- ARGV: prefix, then the names (none: all)
-- Returns: 7 fields per limit: name, concurrency, rate, per (µs) ('' for none), tasks running,
--          claims in its window, the time of the oldest of those (µs; false: none).

local now = now_us()
local limits, out = limits_of(), {}
local names = {unpack(ARGV, 2)}
if #names == 0 then
  for name in pairs(limits) do
    names[#names + 1] = name
  end
end
for _, name in ipairs(names) do
  local l = limits[name]
  if l then
    local started, oldest = 0, nil
    if l[3] then
      started, oldest = window(name, l[4] or 0, now)
    end
    local raw = redis.call('HGET', LIMITS, name)
    local c, r, p = string.match(raw, '^([^,]*),([^,]*),([^,]*)$')
    local n = #out
    out[n + 1], out[n + 2], out[n + 3], out[n + 4] = name, c, r, p
    out[n + 5], out[n + 6], out[n + 7] = running_of(name), started, oldest and int(oldest) or false
  end
end
return out
