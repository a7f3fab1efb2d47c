-- hand_back: running -> queued, charged nothing, for the leases of one queue held by a
-- consumer under tokens it does not keep: a claim whose reply was lost gave them to a consumer
-- that never ran them.
-- KEYS: P:{q}: of the queue; touches its tokens, leases, ready and wake, and t:<id> keys.
-- ARGV: prefix, consumer id, history detail, then the tokens the consumer keeps.
-- Returns: {problems (see try), how many leases were handed back}.

local b, consumer, detail, now = KEYS[1], ARGV[2], ARGV[3], now_us()
local keep = {}
for i = 4, #ARGV do
  keep[ARGV[i]] = true
end
local problems, handed = {}, 0
local leased = try(problems, b .. 'tokens', 'HGETALL') or {}
for i = 1, #leased, 2 do
  local token, id = leased[i], leased[i + 1]
  if not keep[token] and try(problems, b .. 't:' .. id, 'HGET', 'consumer') == consumer then
    settle(b, token, 'handed back', 'queued', detail, now)
    handed = handed + 1
  end
end
return {problems, handed}
