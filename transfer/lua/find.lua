-- Returns the transfer that holds a number now: {id, record, number}, or
-- nil when the number is free, in quarantine or unknown.
-- ARGV[1] is JSON (findArgs in redis.go): prefix, number, now (Unix
-- microseconds, a string).
local a = cjson.decode(ARGV[1])
local r = redis.call('HMGET', a.prefix .. 'n:' .. a.number, 'h', 't')
if not r[1] or not r[2] or r[2] == '' then return nil end
if tonumber(a.now) >= tonumber(r[1]) then return nil end
local t = redis.call('HMGET', a.prefix .. 't:' .. r[2], 'd', 'n')
if not t[1] then return nil end
return {r[2], t[1], t[2] or ''}
