-- Runs a partition's writes only if nobody wrote the partition since the caller read it
-- (Redis Cluster, where one transaction cannot span slots; a single server uses
-- WATCH/MULTI instead). KEYS[1]: the partition's meta hash; every key the commands
-- touch shares its slot. ARGV[1], ARGV[2]: the `next` and `tok` meta fields the caller
-- read ('' when absent); then the commands, each as its argument count followed by the
-- command name and its arguments. Returns 1 when written, 0 when the partition moved.
-- Position rule (see checkpoint.rs): the caller positioned its batch against the `next`
-- it read and writes only what was new (the batch when fresh, its tail from `next` when
-- it overlapped). That position holds only while `next` and `tok` are what it read;
-- otherwise nothing is written and the caller reads again.
local cur = redis.call('HMGET', KEYS[1], 'next', 'tok')
if (cur[1] or '') ~= ARGV[1] or (cur[2] or '') ~= ARGV[2] then return 0 end
local i = 3
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return 1
