-- Removes the leased event for good and makes its transfer's next event
-- due. ARGV[1] is JSON (settleArgs in redis_outbox.go): prefix, transfer,
-- event, token. Returns 'ok', or 'lost' when the lease is not the
-- transfer's any more.
local a = cjson.decode(ARGV[1])
local P = a.prefix
local seq = obHeld(P, a)
if not seq then return 'lost' end
local q = P .. 'ob:q:' .. a.transfer
redis.call('DEL', P .. 'ob:l:' .. a.transfer, P .. 'ob:e:' .. seq)
redis.call('ZREM', P .. 'ob:due', seq)
redis.call('ZREM', P .. 'ob:leased', seq)
redis.call('ZREM', P .. 'ob:age', seq)
redis.call('LREM', q, 1, seq)
local nextSeq = redis.call('LINDEX', q, 0)
if nextSeq then
  redis.call('ZADD', P .. 'ob:due', redis.call('HGET', P .. 'ob:e:' .. nextSeq, 'd'), nextSeq)
end
return 'ok'
