-- purge: delete the tasks in a state, only the given ids when there are any.
-- KEYS: P:ids, P:queues; for each task, P:{q}: t:<id>, the state's index and its other index
--       (ready, due, leases and tokens, or expiry).
-- ARGV: prefix, state, then the ids (none: every task in the state)
-- Returns: how many tasks it deleted.

local state = ARGV[2]
return each_in(state, 3, function(b, id)
  forget(b, id, state)
end)
