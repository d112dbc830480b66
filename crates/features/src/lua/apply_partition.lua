-- Applies one partition batch atomically with its end offset (see the crate doc).
-- KEYS[1]: the partition's meta hash. Every other key is derived from ARGV[1], the
-- partition's key base, and shares its hash tag (one Redis Cluster slot).
-- ARGV[2]: config JSON; ARGV[3]: the pre-aggregated batch (aggregate.rs PartitionDelta).
-- Returns {status, offset}: ok | dup | partial | gap, with the stored next offset.
-- Mirrors MemoryStore::apply_partition step by step. Work is done per key, not per
-- page: each sorted set or hash is read once (ZMSCORE/HMGET) and written once
-- (multi-member ZADD/HSET), because a redis.call costs far more than a table lookup.
local meta = KEYS[1]
local base = ARGV[1]
local cfg = cjson.decode(ARGV[2])
local d = cjson.decode(ARGV[3])

local function int(x) return string.format('%d', x) end
local function num(x) return string.format('%.17g', x) end

-- Redis scripts may pass at most a few thousand values to one call: long argument lists
-- go in slices. `call_many(out, cmd, key, list)` runs `cmd key <slice>` for each slice
-- and appends every reply's elements to `out` (when given).
local SLICE = 2000
local function call_many(out, cmd, key, list, extra)
  for i = 1, #list, SLICE do
    local r
    if extra then
      r = redis.call(cmd, key, extra, unpack(list, i, math.min(i + SLICE - 1, #list)))
    else
      r = redis.call(cmd, key, unpack(list, i, math.min(i + SLICE - 1, #list)))
    end
    if out then
      for _, v in ipairs(r) do out[#out + 1] = v end
    end
  end
  return out
end

-- Current scores of `members` in zset `key` (false where absent), in order.
local function zscores(key, members)
  if #members == 0 then return {} end
  return call_many({}, 'ZMSCORE', key, members)
end

-- Writes score/member pairs (flat list), in slices of whole pairs.
local function zadd(key, pairs_flat, flag)
  if #pairs_flat > 0 then call_many(nil, 'ZADD', key, pairs_flat, flag) end
end

-- Adds `delta[page]` (a number) to each member of zset `key`; members whose count
-- drops to zero or below are removed. Integer counts.
local function zadd_counts(key, delta)
  local pages = {}
  for page, c in pairs(delta) do
    if c ~= 0 then pages[#pages + 1] = page end
  end
  if #pages == 0 then return end
  local old = zscores(key, pages)
  local set, gone = {}, {}
  for i, page in ipairs(pages) do
    local v = (tonumber(old[i]) or 0) + delta[page]
    if v <= 0 then
      if old[i] then gone[#gone + 1] = page end
    else
      set[#set + 1] = int(v)
      set[#set + 1] = page
    end
  end
  zadd(key, set)
  if #gone > 0 then call_many(nil, 'ZREM', key, gone) end
end

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
local state = redis.call('HMGET', meta, 'wm', 't0')
local wm = d.mx
local wm_old = tonumber(state[1])
if wm_old and wm_old > wm then wm = wm_old end
local cur = math.floor(wm / B)
local bidx = base .. 'bidx'
local nw = #cfg.W
local spans = {}
local delta = {}
for i = 1, nw do
  spans[i] = cfg.W[i] / B
  delta[i] = {}
end

-- 1. Buckets that slid out of each window since the last batch (as negative deltas).
if wm_old then
  local cur_old = math.floor(wm_old / B)
  if cur > cur_old then
    local contents = {}
    for i = 1, nw do
      local gone = redis.call('ZRANGEBYSCORE', bidx, '(' .. int(cur_old - spans[i]), int(cur - spans[i]))
      for _, idx in ipairs(gone) do
        local kv = contents[idx]
        if not kv then
          kv = redis.call('HGETALL', base .. 'b:' .. idx)
          contents[idx] = kv
        end
        local di = delta[i]
        for j = 1, #kv, 2 do
          di[kv[j]] = (di[kv[j]] or 0) - tonumber(kv[j + 1])
        end
      end
    end
  end
end
-- Deletes the keys `base .. kind .. member` of the members of zset `index` scored up to
-- `bound` (a ZRANGEBYSCORE bound), and those members.
local function expire_indexed(index, bound, kind)
  local members = redis.call('ZRANGEBYSCORE', index, '-inf', bound)
  if #members == 0 then return end
  local keys = {}
  for i, m in ipairs(members) do keys[i] = base .. kind .. m end
  for i = 1, #keys, SLICE do
    redis.call('UNLINK', unpack(keys, i, math.min(i + SLICE - 1, #keys)))
  end
  redis.call('ZREMRANGEBYSCORE', index, '-inf', bound)
end

local lo_max = cur - spans[nw]
expire_indexed(bidx, int(lo_max), 'b:')

-- 2. This batch's counts: per bucket one HMGET and one HSET, per window one net update.
local by_bucket, bucket_order = {}, {}
for _, x in ipairs(d.b) do
  local idx, page, c = x[1], x[2], x[3]
  if idx > lo_max then
    local sidx = int(idx)
    local bk = by_bucket[sidx]
    if not bk then
      bk = {pages = {}, counts = {}}
      by_bucket[sidx] = bk
      bucket_order[#bucket_order + 1] = sidx
    end
    bk.pages[#bk.pages + 1] = page
    bk.counts[#bk.counts + 1] = c
    for i = 1, nw do
      if idx > cur - spans[i] then delta[i][page] = (delta[i][page] or 0) + c end
    end
  end
end
local new_idx = {}
for _, sidx in ipairs(bucket_order) do
  local bk = by_bucket[sidx]
  local key = base .. 'b:' .. sidx
  local old = call_many({}, 'HMGET', key, bk.pages)
  local set = {}
  for j, page in ipairs(bk.pages) do
    set[#set + 1] = page
    set[#set + 1] = int((tonumber(old[j]) or 0) + bk.counts[j])
  end
  call_many(nil, 'HSET', key, set)
  new_idx[#new_idx + 1] = sidx
  new_idx[#new_idx + 1] = sidx
end
zadd(bidx, new_idx)
for i = 1, nw do zadd_counts(base .. 'w:' .. cfg.L[i], delta[i]) end

-- 3. Trending, rebased when the epoch moves.
local hl = cfg.hl
local t0 = math.floor(wm / cfg.R) * cfg.R
local tr = base .. 'tr'
local t0_old = tonumber(state[2])
if t0_old then
  if t0 > t0_old then
    local scale = math.pow(2, (t0_old - t0) / hl)
    redis.call('ZUNIONSTORE', tr, 1, tr, 'WEIGHTS', num(scale))
    redis.call('ZREMRANGEBYSCORE', tr, '-inf', '(' .. num(cfg.tmin))
  else
    t0 = t0_old
  end
end
local f = math.pow(2, (d.mx - t0) / hl)
if #d.tr > 0 then
  local pages = {}
  for i, x in ipairs(d.tr) do pages[i] = x[1] end
  local old = zscores(tr, pages)
  local set = {}
  for i, x in ipairs(d.tr) do
    set[#set + 1] = num((tonumber(old[i]) or 0) + x[2] * f)
    set[#set + 1] = x[1]
  end
  zadd(tr, set)
  redis.call('ZREMRANGEBYRANK', tr, 0, -(cfg.tmax + 1))
end

-- 4. Sessions across the batch boundary, then pairs inside it.
local sess, sessidx, cvidx = base .. 'sess', base .. 'sessidx', base .. 'cvidx'
local cv, cv_last, cv_order = {}, {}, {}
local function pair(a, b, c, ts)
  local next = cv[a]
  if not next then
    next = {}
    cv[a] = next
    cv_order[#cv_order + 1] = a
  end
  next[b] = (next[b] or 0) + c
  if not cv_last[a] or ts > cv_last[a] then cv_last[a] = ts end
end
if #d.sess > 0 then
  local users = {}
  for i, s in ipairs(d.sess) do users[i] = s[1] end
  local prevs = call_many({}, 'HMGET', sess, users)
  local set, idx = {}, {}
  for i, s in ipairs(d.sess) do
    -- {user, first ts, first page, first session, last ts, last page, last session}
    local prev = prevs[i]
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
    set[#set + 1] = s[1]
    set[#set + 1] = int(s[5]) .. ' ' .. s[6] .. ' ' .. s[7]
    idx[#idx + 1] = int(s[5])
    idx[#idx + 1] = s[1]
  end
  call_many(nil, 'HSET', sess, set)
  zadd(sessidx, idx)
end
for _, p in ipairs(d.pairs) do pair(p[1], p[2], p[3], p[4]) end
if #cv_order > 0 then
  local last = {}
  for _, a in ipairs(cv_order) do
    local k = base .. 'cv:' .. a
    local incr = {}
    for b, c in pairs(cv[a]) do
      incr[#incr + 1] = b
    end
    if #incr == 1 then
      redis.call('ZINCRBY', k, int(cv[a][incr[1]]), incr[1])
    else
      local old = zscores(k, incr)
      local set = {}
      for i, b in ipairs(incr) do
        set[#set + 1] = int((tonumber(old[i]) or 0) + cv[a][b])
        set[#set + 1] = b
      end
      zadd(k, set)
    end
    redis.call('ZREMRANGEBYRANK', k, 0, -(cfg.cvmax + 1))
    last[#last + 1] = int(cv_last[a])
    last[#last + 1] = a
  end
  zadd(cvidx, last, 'GT')
end

-- 5. Closed sessions and stale "read next" lists.
local cut = '(' .. int(wm - cfg.gap)
local closed = redis.call('ZRANGEBYSCORE', sessidx, '-inf', cut)
if #closed > 0 then
  call_many(nil, 'HDEL', sess, closed)
  redis.call('ZREMRANGEBYSCORE', sessidx, '-inf', cut)
end
expire_indexed(cvidx, '(' .. int(wm - cfg.cvttl), 'cv:')

-- 6. Offsets and watermark.
redis.call('HSET', meta, 'next', int(d.e), 'wm', int(wm), 't0', int(t0))
redis.call('HINCRBY', meta, 'events', int(d.n))
return {'ok', int(d.e)}
