-- Applies user deltas, each idempotent by the last offset the user's hash holds for the
-- partition (see the crate doc). KEYS[i]: user hashes (one slot; a key may repeat, the
-- deltas then apply in order). ARGV[1]: offset field (`o<partition>`), ARGV[2]: history
-- length, ARGV[3]: TTL in ms (0: none); then 13 values per key:
-- min offset, max offset, n, clicks, minutes, scroll, visits, engagement, first ts,
-- last ts, type (L/N), last page, last session, history (newest first, space separated).
-- Returns one status per key: 0 duplicate, 1 applied, 2 partly applied already.
-- Mirrors MemoryStore::apply_user.
local of, cap, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local function num(x) return string.format('%.17g', x) end
local function int(x) return string.format('%d', x) end
local out = {}
for i, k in ipairs(KEYS) do
  local a = 3 + (i - 1) * 14
  local min_off, max_off = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local cur = redis.call('HMGET', k, of, 'n', 'c', 't', 's', 'v', 'e', 'f', 'l', 'h')
  local stored = tonumber(cur[1])
  if stored and stored >= max_off then
    out[i] = 0
  elseif stored and stored >= min_off then
    out[i] = 2
  else
    local n = tonumber(cur[2]) or 0
    local hist = ARGV[a + 14]
    local first, last = tonumber(ARGV[a + 9]), tonumber(ARGV[a + 10])
    if n > 0 then
      first = math.min(first, tonumber(cur[8]))
      last = math.max(last, tonumber(cur[9]))
      if cur[10] and cur[10] ~= '' then hist = hist .. ' ' .. cur[10] end
    end
    -- Keep the first `cap` pages.
    local pos, count = 0, 0
    while true do
      local sp = string.find(hist, ' ', pos + 1, true)
      count = count + 1
      if not sp then break end
      if count == cap then hist = string.sub(hist, 1, sp - 1) break end
      pos = sp
    end
    redis.call('HSET', k,
      of, ARGV[a + 2],
      'n', int(n + tonumber(ARGV[a + 3])),
      'c', num((tonumber(cur[3]) or 0) + tonumber(ARGV[a + 4])),
      't', num((tonumber(cur[4]) or 0) + tonumber(ARGV[a + 5])),
      's', num((tonumber(cur[5]) or 0) + tonumber(ARGV[a + 6])),
      'v', num((tonumber(cur[6]) or 0) + tonumber(ARGV[a + 7])),
      'e', num((tonumber(cur[7]) or 0) + tonumber(ARGV[a + 8])),
      'f', int(first), 'l', int(last),
      'ty', ARGV[a + 11], 'lp', ARGV[a + 12], 'ls', ARGV[a + 13], 'h', hist)
    if ttl > 0 then redis.call('PEXPIRE', k, ttl) end
    out[i] = 1
  end
end
return out
