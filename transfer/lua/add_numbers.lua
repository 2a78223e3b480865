-- Adds numbers to a country's pool, un-retires those configured again, and
-- moves free ones over from another country. Returns "number other" for a
-- number still busy in another country (a lease raced the check), else "".
-- A number that was never leased holds only its country (c) and its
-- entries in avail and freeat; the lease adds the rest (h, f, t, held).
-- ARGV[1] is JSON (numbersArgs in redis_numbers.go): prefix, now (Unix
-- microseconds, a string), country, numbers (at most a few thousand: the
-- new ones enter each index in one ZADD).
local a = cjson.decode(ARGV[1])
local now = tonumber(a.now)
local P, cc = a.prefix, a.country
redis.call('SADD', P .. 'countries', cc)
local fresh, back = {}, {}
-- index writes what the loop has added so far (also before a refusal, so
-- no number is left half-added).
local function index()
  if #fresh > 0 then
    redis.call('ZADD', P .. 'avail:' .. cc, unpack(fresh))
    redis.call('ZADD', P .. 'freeat:' .. cc, unpack(fresh))
  end
  if #back > 0 then redis.call('ZADD', P .. 'avail:' .. cc, unpack(back)) end
end
for _, n in ipairs(a.numbers) do
  local nk = P .. 'n:' .. n
  local created = redis.call('HSETNX', nk, 'c', cc) == 1
  if not created then
    local r = redis.call('HMGET', nk, 'c', 'r', 'f', 'h')
    if r[1] ~= cc then
      if now < tonumber(r[4] or '0') or now < tonumber(r[3] or '0') then
        index()
        return n .. ' ' .. r[1]
      end
      redis.call('DEL', nk)
      redis.call('ZREM', P .. 'avail:' .. r[1], n)
      redis.call('ZREM', P .. 'freeat:' .. r[1], n)
      redis.call('ZREM', P .. 'held:' .. r[1], n)
      redis.call('HSET', nk, 'c', cc)
      created = true
    elseif r[2] == '1' then
      redis.call('HSET', nk, 'r', '0')
      table.insert(back, r[3])
      table.insert(back, n)
    end
  end
  if created then
    table.insert(fresh, 0)
    table.insert(fresh, n)
  end
end
index()
return ''
