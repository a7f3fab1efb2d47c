-- limits_set: store each task name's limits, or remove them when it has none. A name limited
-- for the first time counts its tasks running now (its tokens go into P:running:<name>).
-- KEYS: P:limits, P:queues; each P:running:<name>; each queue's leases, tokens and t:<id>.
-- ARGV: prefix, then 4 per name: name, concurrency, rate, per (µs) ('' for none)
-- Returns: how many names are limited now.

local new = {}
for i = 2, #ARGV, 4 do
  local name = ARGV[i]
  if ARGV[i + 1] == '' and ARGV[i + 2] == '' then
    redis.call('HDEL', LIMITS, name)
  else
    if redis.call('HEXISTS', LIMITS, name) == 0 then
      new[name] = true
    end
    redis.call('HSET', LIMITS, name, ARGV[i + 1] .. ',' .. ARGV[i + 2] .. ',' .. ARGV[i + 3])
  end
end
if next(new) then
  for _, b in ipairs(all_bases()) do
    local held = try({}, b .. 'tokens', 'HGETALL') or {}
    for i = 1, #held, 2 do
      local name = try({}, b .. 't:' .. held[i + 1], 'HGET', 'name')
      if name and new[name] then
        redis.call('SADD', PREFIX .. ':running:' .. name, held[i])
      end
    end
  end
end
return redis.call('HLEN', LIMITS)
