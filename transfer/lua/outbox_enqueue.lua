-- Appends events to the outbox (outside a transfer change).
-- ARGV[1] is JSON (enqueueArgs in redis_outbox.go): prefix, events (each
-- as obEnqueue in outbox_lib.lua takes it).
local a = cjson.decode(ARGV[1])
for _, e in ipairs(a.events) do obEnqueue(a.prefix, e, '') end
return 1
