-- Counts each country's numbers at now: {cc, free, leased, quarantined, ...}.
-- ARGV[1] is JSON (poolStatsArgs in redis_numbers.go): prefix, now (Unix
-- microseconds, a string).
local a = cjson.decode(ARGV[1])
local P = a.prefix
local after = '(' .. a.now
local out = {}
for _, cc in ipairs(redis.call('SMEMBERS', P .. 'countries')) do
  local leased = redis.call('ZCOUNT', P .. 'held:' .. cc, after, '+inf')
  local busy = redis.call('ZCOUNT', P .. 'freeat:' .. cc, after, '+inf')
  local free = redis.call('ZCOUNT', P .. 'avail:' .. cc, '-inf', a.now)
  table.insert(out, cc)
  table.insert(out, free)
  table.insert(out, leased)
  table.insert(out, busy - leased)
end
return out
