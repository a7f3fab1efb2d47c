-- find: one page of a queue's tasks in one state, in the reverse order of the state's sorted set
-- (newest first, but for queued tasks: lowest priority first), whose name contains a text. Read
-- only; a call reads at most `count` tasks, so that no call holds the server for long.
-- KEYS: P:{q}: followed by the state's sorted set (ready, leases, scheduled, done or dead);
--       touches P:{q}:t:<id> of the tasks in it.
-- ARGV: prefix, queue, state, text, start (0: the first), count (> 0)
-- Returns: where the next page starts (-1: there is none), then per task found: its seq, its id
--          and its hash as field, value pairs. A key of the wrong type is skipped.

local b, state, text = base_of(ARGV[2]), ARGV[3], ARGV[4]
local start, count = tonumber(ARGV[5]), tonumber(ARGV[6])
local members = try({}, KEYS[1], 'ZREVRANGE', start, start + count - 1) or {}
local out = {#members < count and -1 or start + count}
for _, member in ipairs(members) do
  local id = member
  if state == 'queued' then
    id = string.sub(member, SEQ_DIGITS + 1)
  end
  local key = b .. 't:' .. id
  local found = try({}, key, 'HMGET', 'name', 'seq')
  if found and found[1] and string.find(found[1], text, 1, true) then
    out[#out + 1] = whole(found[2]) or 0
    out[#out + 1] = id
    out[#out + 1] = try({}, key, 'HGETALL') or {}
  end
end
return out
