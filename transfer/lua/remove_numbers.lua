-- Takes numbers that are no longer configured out of a country: retires
-- those leased or in quarantine (kept until both end, never leased again),
-- drops the free ones.
-- ARGV[1] is JSON (numbersArgs in redis_numbers.go): prefix, now (Unix
-- microseconds, a string), country, numbers.
local a = cjson.decode(ARGV[1])
local now = tonumber(a.now)
local P, cc = a.prefix, a.country
for _, n in ipairs(a.numbers) do
  local nk = P .. 'n:' .. n
  local r = redis.call('HMGET', nk, 'h', 'f', 'c')
  if r[3] == cc then
    redis.call('ZREM', P .. 'avail:' .. cc, n)
    if now < tonumber(r[1] or '0') or now < tonumber(r[2] or '0') then
      redis.call('HSET', nk, 'r', '1')
    else
      redis.call('DEL', nk)
      redis.call('ZREM', P .. 'freeat:' .. cc, n)
      redis.call('ZREM', P .. 'held:' .. cc, n)
    end
  end
end
return ''
