-- counts: how many tasks each (queue, state) holds (read only).
-- KEYS: P:queues; for each queue in it, P:{q}: scheduled, ready, leases, done and dead.
-- ARGV: prefix
-- Returns: 3 fields per non-empty pair: queue, state, count (a key of the wrong type counts
--          none).

local out = {}
for _, queue in ipairs(redis.call('SMEMBERS', QUEUES)) do
  for _, state in ipairs({'scheduled', 'queued', 'running', 'done', 'dead'}) do
    local n = try({}, base_of(queue) .. INDEX[state], 'ZCARD')
    if n and n > 0 then
      out[#out + 1], out[#out + 2], out[#out + 3] = queue, state, n
    end
  end
end
return out
