-- next_eta: the earliest eta of any scheduled task (read only).
-- KEYS: P:queues; for each queue in it, P:{q}:due.
-- ARGV: prefix
-- Returns: that eta minus the server's now, in µs; nil when nothing is scheduled. A due key of
--          the wrong type is skipped.

local earliest = nil
for _, b in ipairs(all_bases()) do
  local first = try({}, b .. 'due', 'ZRANGE', 0, 0, 'WITHSCORES')
  local eta = first and tonumber(first[2])
  if eta and (not earliest or eta < earliest) then
    earliest = eta
  end
end
if not earliest then
  return nil
end
return int(earliest - now_us())
