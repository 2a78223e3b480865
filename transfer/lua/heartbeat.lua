-- Marks a node alive for ttl and records when, by the Redis clock (so the
-- nodes' clocks do not matter).
-- ARGV[1] is JSON (heartbeatArgs in redis_nodes.go): prefix, node, ttlMs.
local a = cjson.decode(ARGV[1])
local t = redis.call('TIME')
local ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
redis.call('SET', a.prefix .. 'hb:' .. a.node, ms, 'PX', a.ttlMs)
redis.call('ZADD', a.prefix .. 'nodes', ms, a.node)
return 1
