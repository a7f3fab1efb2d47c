-- crash: the holder saw its attempt die; requeue the task at once counting a crash (dead with
-- reason `crashed` once its crashes reach max_crashes), alone or not; fenced.
-- KEYS: P:{q}: of the token's queue; touches its tokens, leases, ready and wake or dead,
--       and t:<id> keys.
-- ARGV: prefix, token, detail
-- Returns: the problems (a task quarantined instead: see lib.lua), then id, name, new state,
--          crashes, charged (1); nothing more when the token holds no lease.

local problems = {}
local out = {problems}
crash(KEYS[1], ARGV[2], ARGV[3], nil, now_us(), out, problems)
return out
