-- Records a failed attempt: the leased event stays its transfer's head,
-- due again at next, and the lease ends. ARGV[1] is JSON (settleArgs in
-- redis_outbox.go): prefix, transfer, event, token, next, attempt,
-- lastError. Returns 'ok' or 'lost' (as outbox_done.lua).
local a = cjson.decode(ARGV[1])
local P = a.prefix
local seq = obHeld(P, a)
if not seq then return 'lost' end
redis.call('HSET', P .. 'ob:e:' .. seq, 'n', a.attempt, 'x', a.lastError, 'd', a.next)
redis.call('DEL', P .. 'ob:l:' .. a.transfer)
redis.call('ZREM', P .. 'ob:leased', seq)
redis.call('ZADD', P .. 'ob:due', a.next, seq)
return 'ok'
