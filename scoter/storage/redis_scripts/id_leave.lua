-- id_leave: whether a task id that the id directory of a Redis Cluster places in this queue may
-- be taken by an enqueue on another queue: when the queue holds no task of that id, or (with
-- restart '1') a done or dead one, which is then deleted as enqueue.lua deletes a finished id
-- it starts over. A live task (scheduled, queued, running) keeps its id.
-- KEYS: P:{q}: of the queue the directory names; touches its t:<id>, forgotten and index keys.
-- ARGV: prefix, restart ('1' or '0'), id
-- Returns: 1 when the id may be taken, else 0.

local b, id = KEYS[1], ARGV[3]
local state = redis.call('HGET', b .. 't:' .. id, 'state')
if not state then
  return 1
end
if ARGV[2] == '1' and (state == 'done' or state == 'dead') then
  forget(b, id, state)
  return 1
end
return 0
