-- Leases up to limit due events, at most one per transfer (only heads are
-- in ob:due), earliest due first. Heads whose lease ran out by now are due
-- again first, at the time they were due.
-- ARGV[1] is JSON (claimArgs in redis_outbox.go): prefix, node, now,
-- expires (the new leases' expiry), limit.
-- Returns {{id, transfer, credential, type, createdAt, body, attempts,
-- lastError, due, token}, ...}.
local a = cjson.decode(ARGV[1])
local P = a.prefix
for _, seq in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ob:leased', '-inf', a.now)) do
  redis.call('ZREM', P .. 'ob:leased', seq)
  redis.call('ZADD', P .. 'ob:due', redis.call('HGET', P .. 'ob:e:' .. seq, 'd'), seq)
end
local out = {}
for _, seq in ipairs(redis.call('ZRANGEBYSCORE', P .. 'ob:due', '-inf', a.now, 'LIMIT', 0, a.limit)) do
  local e = redis.call('HMGET', P .. 'ob:e:' .. seq, 'i', 't', 'c', 'y', 'a', 'b', 'n', 'x', 'd')
  local token = tostring(redis.call('INCR', P .. 'ob:tok'))
  redis.call('ZREM', P .. 'ob:due', seq)
  redis.call('ZADD', P .. 'ob:leased', a.expires, seq)
  redis.call('HSET', P .. 'ob:l:' .. e[2], 'k', token, 's', seq, 'o', a.node)
  e[10] = token
  table.insert(out, e)
end
return out
