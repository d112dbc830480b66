-- Compare-and-set of user records (Redis Cluster: KEYS share one slot). ARGV[1]: TTL in
-- ms (0: none); then per key the value the caller read ('' when absent) and the new
-- value. A record is written only if it still holds what the caller read. Returns one
-- flag per key: 1 written, 0 changed meanwhile (the caller reads it again and retries).
local ttl = tonumber(ARGV[1])
local out = {}
for i, k in ipairs(KEYS) do
  local cur = redis.call('GET', k) or ''
  if cur == ARGV[2 * i] then
    if ttl > 0 then
      redis.call('SET', k, ARGV[2 * i + 1], 'PX', ttl)
    else
      redis.call('SET', k, ARGV[2 * i + 1])
    end
    out[i] = 1
  else
    out[i] = 0
  end
end
return out
