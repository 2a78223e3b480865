-- Finds a number wanted for a country while it is busy (leased or in
-- quarantine) in another one. Returns "number other", or "".
-- ARGV[1] is JSON (numbersArgs in redis_numbers.go): prefix, now (Unix
-- microseconds, a string), country, numbers.
local a = cjson.decode(ARGV[1])
local now = tonumber(a.now)
for _, n in ipairs(a.numbers) do
  local r = redis.call('HMGET', a.prefix .. 'n:' .. n, 'h', 'f', 'c')
  if r[3] and r[3] ~= a.country and (now < tonumber(r[1] or '0') or now < tonumber(r[2] or '0')) then
    return n .. ' ' .. r[3]
  end
end
return ''
