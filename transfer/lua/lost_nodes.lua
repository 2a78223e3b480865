-- Lists the nodes with ONGOING transfers that have no live heartbeat and
-- whose last one is older than afterMs (Redis clock); forgets the nodes
-- whose ONGOING index is empty.
-- ARGV[1] is JSON (lostNodesArgs in redis_nodes.go): prefix, afterMs.
local a = cjson.decode(ARGV[1])
local P = a.prefix
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', P .. 'ongoing-nodes')) do
  if redis.call('SCARD', P .. 'ongoing:' .. node) == 0 then
    redis.call('SREM', P .. 'ongoing-nodes', node)
  elseif redis.call('EXISTS', P .. 'hb:' .. node) == 0 then
    local last = redis.call('ZSCORE', P .. 'nodes', node)
    if not last or now - tonumber(last) > a.afterMs then
      table.insert(out, node)
    end
  end
end
return out
