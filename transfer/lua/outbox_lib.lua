-- The Redis store's outbox (webhook.Outbox): the functions its scripts
-- share. redis_scripts.go puts this file before write.lua and each
-- outbox_*.lua. Keys (P is the prefix; times are Unix microseconds; an
-- event's seq is its enqueue number, zero-padded so it sorts as text):
--
--   P ob:seq         counter of seqs        P ob:tok        counter of lease tokens
--   P ob:e:<seq>     hash: i id, t transfer, c credential, y type, a createdAt,
--                    b body, n attempts, x last error, d due (0: fresh)
--   P ob:q:<id>      list: the transfer's undelivered seqs, oldest first
--   P ob:due         zset: seq of each unleased head, by due (ties: seq order)
--   P ob:leased      zset: seq of each leased head, by lease expiry
--   P ob:l:<id>      hash: the transfer's lease: k token, s seq, o node
--   P ob:age         zset: every undelivered seq, by createdAt

-- obEnqueue appends event e ({id, transfer, credential, type, createdAt,
-- body, numberAt}) to its transfer's queue; number goes into the body at
-- byte numberAt (see transfer.outboxEvent) when that is not -1.
local function obEnqueue(P, e, number)
  local body = e.body
  if e.numberAt and e.numberAt >= 0 then
    body = string.sub(body, 1, e.numberAt) .. number .. string.sub(body, e.numberAt + 1)
  end
  local seq = string.format('%016d', redis.call('INCR', P .. 'ob:seq'))
  redis.call('HSET', P .. 'ob:e:' .. seq, 'i', e.id, 't', e.transfer, 'c', e.credential, 'y', e.type,
    'a', e.createdAt, 'b', body, 'n', 0, 'x', '', 'd', 0)
  if redis.call('RPUSH', P .. 'ob:q:' .. e.transfer, seq) == 1 then
    redis.call('ZADD', P .. 'ob:due', 0, seq)
  end
  redis.call('ZADD', P .. 'ob:age', e.createdAt, seq)
end

-- obHeld returns the seq that lease a ({transfer, event, token}) holds, or
-- nil when the lease is not the transfer's any more.
local function obHeld(P, a)
  local l = redis.call('HMGET', P .. 'ob:l:' .. a.transfer, 'k', 's')
  if l[1] ~= a.token or not l[2] then return nil end
  if redis.call('HGET', P .. 'ob:e:' .. l[2], 'i') ~= a.event then return nil end
  return l[2]
end
