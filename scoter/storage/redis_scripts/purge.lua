-- purge: delete the tasks in a state, only the given ids when there are any.
-- KEYS: P:ids, P:queues; for each task, P:{q}: t:<id> and the state's sorted set (ready,
--       scheduled and due, leases and tokens, done and expiry, or dead).
-- ARGV: prefix, state, then the ids (none: every task in the state)
-- Returns: how many tasks it deleted.

local state = ARGV[2]
return each_in(state, 3, function(b, id)
  forget(b, id, state)
end)
