-- Forward-only writes of user records of one partition (Redis Cluster: KEYS share one
-- slot). ARGV[1]: TTL in ms (0: none); ARGV[2]: the partition; then per key the
-- record's offset and its JSON. A record is a function of the partition's events up to
-- its offset, so one is written only over a record of a lower offset (or none): a
-- writer that is behind never undoes one that is ahead. The offset is kept beside the
-- record in the field `<partition>:o`.
local ttl = tonumber(ARGV[1])
local field = ARGV[2]
local offset_field = field .. ':o'
for i, k in ipairs(KEYS) do
  local offset = tonumber(ARGV[1 + 2 * i])
  local cur = tonumber(redis.call('HGET', k, offset_field))
  -- Position rule (see checkpoint.rs): the stored record holds the partition's log up
  -- to and including `cur`, the new one up to `offset`. Stored at or past `offset`, the
  -- new record is a duplicate of what is there and is not written; otherwise it is
  -- fresh (or overlaps: it holds everything the stored one does, and more).
  if cur == nil or cur < offset then
    -- The offset as it was given: a Lua number would be written as %.14g.
    redis.call('HSET', k, field, ARGV[2 + 2 * i], offset_field, ARGV[1 + 2 * i])
    if ttl > 0 then
      redis.call('PEXPIRE', k, ttl)
    end
  end
end
return #KEYS
