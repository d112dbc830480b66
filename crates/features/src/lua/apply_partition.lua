-- Applies one partition batch atomically with its end offset (see the crate doc).
-- KEYS[1]: the partition's meta hash. Every other key is derived from ARGV[1], the
-- partition's key base, and shares its hash tag (one Redis Cluster slot).
-- ARGV[2]: config JSON; ARGV[3]: the pre-aggregated batch (aggregate.rs PartitionDelta).
-- Returns {status, offset}: ok | dup | partial | gap, with the stored next offset.
-- Mirrors MemoryStore::apply_partition step by step.
local meta = KEYS[1]
local base = ARGV[1]
local cfg = cjson.decode(ARGV[2])
local d = cjson.decode(ARGV[3])

local function int(x) return string.format('%d', x) end
local function num(x) return string.format('%.17g', x) end

local stored = redis.call('HGET', meta, 'next')
if stored then
  stored = tonumber(stored)
  if stored >= d.e then return {'dup', int(stored)} end
  if stored > d.s then return {'partial', int(stored)} end
  if stored < d.s then return {'gap', int(stored)} end
end
if d.n == 0 then
  redis.call('HSET', meta, 'next', int(d.e))
  return {'ok', int(d.e)}
end

local B = cfg.B
local wm = d.mx
local wm_old = redis.call('HGET', meta, 'wm')
if wm_old then
  wm_old = tonumber(wm_old)
  if wm_old > wm then wm = wm_old end
end
local cur = math.floor(wm / B)
local bidx = base .. 'bidx'
local nw = #cfg.W
local spans = {}
for i = 1, nw do spans[i] = cfg.W[i] / B end

-- 1. Buckets that slid out of each window since the last batch.
if wm_old then
  local cur_old = math.floor(wm_old / B)
  if cur > cur_old then
    for i = 1, nw do
      local wkey = base .. 'w:' .. cfg.L[i]
      local gone = redis.call('ZRANGEBYSCORE', bidx, '(' .. int(cur_old - spans[i]), int(cur - spans[i]))
      for _, idx in ipairs(gone) do
        local kv = redis.call('HGETALL', base .. 'b:' .. idx)
        for j = 1, #kv, 2 do
          local left = tonumber(redis.call('ZINCRBY', wkey, '-' .. kv[j + 1], kv[j]))
          if left <= 0 then redis.call('ZREM', wkey, kv[j]) end
        end
      end
    end
  end
end
local lo_max = cur - spans[nw]
local dead = redis.call('ZRANGEBYSCORE', bidx, '-inf', int(lo_max))
for _, idx in ipairs(dead) do redis.call('DEL', base .. 'b:' .. idx) end
if #dead > 0 then redis.call('ZREMRANGEBYSCORE', bidx, '-inf', int(lo_max)) end

-- 2. This batch's counts.
local seen_bucket = {}
local adds = {}
for i = 1, nw do adds[i] = {} end
for _, x in ipairs(d.b) do
  local idx, page, c = x[1], x[2], x[3]
  if idx > lo_max then
    local sidx = int(idx)
    redis.call('HINCRBY', base .. 'b:' .. sidx, page, int(c))
    if not seen_bucket[sidx] then
      seen_bucket[sidx] = true
      redis.call('ZADD', bidx, sidx, sidx)
    end
    for i = 1, nw do
      if idx > cur - spans[i] then adds[i][page] = (adds[i][page] or 0) + c end
    end
  end
end
for i = 1, nw do
  local wkey = base .. 'w:' .. cfg.L[i]
  for page, c in pairs(adds[i]) do redis.call('ZINCRBY', wkey, int(c), page) end
end

-- 3. Trending, rebased when the epoch moves.
local hl = cfg.hl
local t0 = math.floor(wm / cfg.R) * cfg.R
local tr = base .. 'tr'
local t0_old = redis.call('HGET', meta, 't0')
if t0_old then
  t0_old = tonumber(t0_old)
  if t0 > t0_old then
    local scale = math.pow(2, (t0_old - t0) / hl)
    redis.call('ZUNIONSTORE', tr, 1, tr, 'WEIGHTS', num(scale))
    redis.call('ZREMRANGEBYSCORE', tr, '-inf', '(' .. num(cfg.tmin))
  else
    t0 = t0_old
  end
end
local f = math.pow(2, (d.mx - t0) / hl)
for _, x in ipairs(d.tr) do redis.call('ZINCRBY', tr, num(x[2] * f), x[1]) end
local over = redis.call('ZCARD', tr) - cfg.tmax
if over > 0 then redis.call('ZREMRANGEBYRANK', tr, 0, over - 1) end

-- 4. Sessions across the batch boundary, then pairs inside it.
local sess, sessidx, cvidx = base .. 'sess', base .. 'sessidx', base .. 'cvidx'
local touched = {}
local function pair(a, b, c, ts)
  redis.call('ZINCRBY', base .. 'cv:' .. a, int(c), b)
  redis.call('ZADD', cvidx, 'GT', int(ts), a)
  touched[a] = true
end
for _, s in ipairs(d.sess) do
  -- {user, first ts, first page, first session, last ts, last page, last session}
  local prev = redis.call('HGET', sess, s[1])
  if prev then
    local a = string.find(prev, ' ', 1, true)
    local b = string.find(prev, ' ', a + 1, true)
    local pts = tonumber(string.sub(prev, 1, a - 1))
    local ppage = string.sub(prev, a + 1, b - 1)
    local psid = string.sub(prev, b + 1)
    if psid == s[4] and math.abs(s[2] - pts) <= cfg.gap and ppage ~= s[3] then
      pair(ppage, s[3], 1, s[2])
    end
  end
  redis.call('HSET', sess, s[1], int(s[5]) .. ' ' .. s[6] .. ' ' .. s[7])
  redis.call('ZADD', sessidx, int(s[5]), s[1])
end
for _, p in ipairs(d.pairs) do pair(p[1], p[2], p[3], p[4]) end
for a, _ in pairs(touched) do
  local k = base .. 'cv:' .. a
  local extra = redis.call('ZCARD', k) - cfg.cvmax
  if extra > 0 then redis.call('ZREMRANGEBYRANK', k, 0, extra - 1) end
end

-- 5. Closed sessions and stale "read next" lists.
local function drop(list, fn)
  for i = 1, #list, 500 do
    local chunk = {}
    for j = i, math.min(i + 499, #list) do chunk[#chunk + 1] = list[j] end
    fn(chunk)
  end
end
local cut = '(' .. int(wm - cfg.gap)
local closed = redis.call('ZRANGEBYSCORE', sessidx, '-inf', cut)
if #closed > 0 then
  drop(closed, function(c) redis.call('HDEL', sess, unpack(c)) end)
  redis.call('ZREMRANGEBYSCORE', sessidx, '-inf', cut)
end
local cvcut = '(' .. int(wm - cfg.cvttl)
local stale = redis.call('ZRANGEBYSCORE', cvidx, '-inf', cvcut)
if #stale > 0 then
  for _, p in ipairs(stale) do redis.call('DEL', base .. 'cv:' .. p) end
  redis.call('ZREMRANGEBYSCORE', cvidx, '-inf', cvcut)
end

-- 6. Offsets and watermark.
redis.call('HSET', meta, 'next', int(d.e), 'wm', int(wm), 't0', int(t0))
redis.call('HINCRBY', meta, 'events', int(d.n))
return {'ok', int(d.e)}
