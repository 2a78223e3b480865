-- Deletes one ended transfer, if it still is ended, and takes it out of the
-- ended index either way. Returns 1 if it deleted the record, else 0.
-- ARGV[1] is JSON (purgeArgs in redis.go): prefix, id.
local a = cjson.decode(ARGV[1])
local tk = a.prefix .. 't:' .. a.id
local d = redis.call('HGET', tk, 'd')
local gone = 0
if d then
  local st = cjson.decode(d)['status']
  if st == 'COMPLETED' or st == 'EXPIRED' then
    redis.call('DEL', tk)
    redis.call('HINCRBY', a.prefix .. 'counts', st, -1)
    gone = 1
  end
end
redis.call('ZREM', a.prefix .. 'ended', a.id)
return gone
