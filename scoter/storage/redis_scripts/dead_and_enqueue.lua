-- dead_and_enqueue: dead.lua (whose text runs here as `dead_script`), then, only when the
-- token held its lease, store tasks as enqueue.lua does (`enqueue_script`): a flow step's
-- death and its error handler in one step (scoter.flows).
-- KEYS: P:ids first (a directory key: the tasks it stores may go to any queue, so it is not
--       confined to one queue's slot, see ONE_QUEUE in lib.lua), then P:{q}: of the token's
--       queue; touches what dead.lua and enqueue.lua touch.
-- ARGV: prefix, token, reason, has error ('1' or ''), error, history detail (as dead.lua), then
--       7 values per task as enqueue.lua takes them
-- Returns: 1, or 0 when the token holds no lease (nothing is stored).

local directory = KEYS[1]
KEYS[1] = KEYS[2] -- dead.lua finds its queue's base first
if dead_script() == 0 then
  return 0
end
KEYS[1] = directory
for _ = 2, 6 do
  table.remove(ARGV, 2)
end
table.insert(ARGV, 2, '0') -- an id already stored is left as it is
enqueue_script()
return 1
