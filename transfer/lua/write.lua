-- Creates or updates one transfer together with every index entry the
-- change moves, as transfer.plan decides it (planCreate, planUpdate); the
-- embedded store applies the same plan in BoltStore.apply.
--
-- ARGV[1] is JSON (writeArgs in redis.go); times are Unix microseconds,
-- as strings. Absent fields mean "nothing to do".
--   prefix, id, record      key prefix, transfer id, the record's JSON
--   version                 absent: a create (the id must be free); else the
--                           version the update read (compare-and-set)
--   token                   an update's write token (see RedisStore.Update)
--   countFrom, countTo      statuses whose counts move (-1, +1)
--   expiryDel, expiryAdd    leave the expiry index / enter it at this score
--   ended                   enter the ended index at this score
--   lease                   {country, holder, now, heldUntil, freeAt}: lease
--                           the country's longest-rested free number
--   release                 {country, holder, number, heldUntil, freeAt}:
--                           end that number's lease early, if still held
--   ongoingFrom, ongoingTo  nodes whose ONGOING index the transfer leaves,
--                           enters
--   events                  webhook events to append to the outbox (see
--                           obEnqueue in outbox_lib.lua, put before this)
--
-- Returns {'ok', number} | {'exists', record, number} | {'moved'} (another
-- writer won) | {'unknown'} (no such country) | {'nonumber'} (none free).
local a = cjson.decode(ARGV[1])
local P = a.prefix
local tk = P .. 't:' .. a.id

-- setTimes indexes a number's new lease (the avail index only holds
-- numbers that are not retired, so it is updated, never added to).
local function setTimes(cc, number, heldUntil, freeAt)
  redis.call('ZADD', P .. 'avail:' .. cc, 'XX', freeAt, number)
  redis.call('ZADD', P .. 'freeat:' .. cc, freeAt, number)
  redis.call('ZADD', P .. 'held:' .. cc, heldUntil, number)
end

if a.version == nil then
  if redis.call('EXISTS', tk) == 1 then
    local r = redis.call('HMGET', tk, 'd', 'n')
    return {'exists', r[1], r[2] or ''}
  end
elseif redis.call('HGET', tk, 'v') ~= a.version then
  return {'moved'}
end

local number = ''
local l = a.lease
if l then
  local avail = P .. 'avail:' .. l.country
  if redis.call('ZCARD', avail) == 0 then return {'unknown'} end
  local pick = redis.call('ZRANGEBYSCORE', avail, '-inf', l.now, 'LIMIT', 0, 1)
  if #pick == 0 then return {'nonumber'} end
  number = pick[1]
  redis.call('HSET', P .. 'n:' .. number, 'h', l.heldUntil, 'f', l.freeAt, 't', l.holder)
  setTimes(l.country, number, l.heldUntil, l.freeAt)
end

local r = a.release
if r then
  local nk = P .. 'n:' .. r.number
  local n = redis.call('HMGET', nk, 't', 'h')
  if n[1] == r.holder and n[2] and tonumber(r.heldUntil) < tonumber(n[2]) then
    redis.call('HSET', nk, 'h', r.heldUntil, 'f', r.freeAt)
    setTimes(r.country, r.number, r.heldUntil, r.freeAt)
  end
end

if a.version == nil then
  redis.call('HSET', tk, 'd', a.record, 'v', 1, 'n', number)
else
  redis.call('HSET', tk, 'd', a.record, 'w', a.token)
  redis.call('HINCRBY', tk, 'v', 1)
end
if a.countFrom then redis.call('HINCRBY', P .. 'counts', a.countFrom, -1) end
if a.countTo then redis.call('HINCRBY', P .. 'counts', a.countTo, 1) end
if a.expiryDel then redis.call('ZREM', P .. 'expiry', a.id) end
if a.expiryAdd then redis.call('ZADD', P .. 'expiry', a.expiryAdd, a.id) end
if a.ended then redis.call('ZADD', P .. 'ended', a.ended, a.id) end
if a.ongoingFrom then redis.call('SREM', P .. 'ongoing:' .. a.ongoingFrom, a.id) end
if a.ongoingTo then
  redis.call('SADD', P .. 'ongoing:' .. a.ongoingTo, a.id)
  redis.call('SADD', P .. 'ongoing-nodes', a.ongoingTo)
end
for _, e in ipairs(a.events or {}) do obEnqueue(P, e, number) end
return {'ok', number}
