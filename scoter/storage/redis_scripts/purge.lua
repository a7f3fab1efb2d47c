-- purge: delete the tasks in a state: the given ids, or when there are none up to `limit` of
-- every task in the state (one batch of Storage.purge).
-- KEYS: P:ids, P:queues; for each task, P:{q}: t:<id> and the state's sorted set (ready,
--       scheduled and due, leases and tokens, done and expiry, or dead).
-- ARGV: prefix, state, limit, then the ids (none: any task in the state)
-- Returns: how many tasks it deleted.

local state = ARGV[2]
local writes = {}
local deleted = each_in(state, 4, tonumber(ARGV[3]), function(b, id)
  forget(b, id, state, writes)
end)
flush(writes)
return deleted
