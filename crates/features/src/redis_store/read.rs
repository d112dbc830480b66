//! The read side used by the API. Per-partition lists are merged by the reader, in one
//! pipelined round trip: each partition publishes its window and trending top lists
//! (`top_list_len` entries, so a page outside a partition's list counts nothing from
//! that partition) and its full "read next" lists. A user is one hash, one round trip;
//! several partitions' records of one user are merged (sums over all; the record with
//! the latest event first, see [`crate::user_record`]).

use std::time::Instant;

use newsrec_core::{PageId, UserId};

use super::codec::{parse_list, parse_user};
use super::{PARTITIONS_TTL, RedisStore};
use crate::checkpoint::Partition;
use crate::error::StoreError;
use crate::user_record::{Caps, merged};
use crate::values::{ScoredPage, UserState, merge_tops};
use crate::window::{Window, decay_weight};

/// What readers read of a partition's meta hash.
struct ReadMeta {
    /// `wm`: the latest event time applied.
    watermark: Option<i64>,
    /// `t0`: the epoch the stored trending scores are relative to.
    trending_epoch: Option<i64>,
}

impl RedisStore {
    /// The partitions with state, read again at most every [`PARTITIONS_TTL`].
    async fn cached_partitions(&self) -> Result<Vec<Partition>, StoreError> {
        if let Some((at, parts)) = self.cache().as_ref()
            && at.elapsed() < PARTITIONS_TTL
        {
            return Ok(parts.clone());
        }
        let parts = self.stored_partitions().await?;
        *self.cache() = Some((Instant::now(), parts.clone()));
        Ok(parts)
    }

    /// Reads stored lists (`GET` each key) and merges them, each scaled by its factor.
    async fn merged_lists(
        &self,
        keys: &[(String, f64)],
        k: usize,
    ) -> Result<Vec<ScoredPage>, StoreError> {
        if keys.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let values: Vec<Option<String>> = self
            .query_all(
                keys.iter()
                    .map(|(k, _)| redis::cmd("GET").arg(k).to_owned())
                    .collect(),
            )
            .await?;
        let mut lists = Vec::with_capacity(keys.len());
        for ((key, factor), v) in keys.iter().zip(values) {
            if let Some(v) = v {
                lists.push((parse_list(key, &v)?, *factor));
            }
        }
        Ok(merge_tops(lists.into_iter(), k))
    }

    /// The watermark and trending epoch of each of `parts`.
    async fn metas(&self, parts: &[Partition]) -> Result<Vec<ReadMeta>, StoreError> {
        // Redis rejects an empty pipeline: a store nothing was applied to has no partitions.
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let metas: Vec<(Option<i64>, Option<i64>)> = self
            .query_all(
                parts
                    .iter()
                    .map(|p| {
                        redis::cmd("HMGET")
                            .arg(self.keys.meta(*p))
                            .arg("wm")
                            .arg("t0")
                            .to_owned()
                    })
                    .collect(),
            )
            .await?;
        Ok(metas
            .into_iter()
            .map(|(watermark, trending_epoch)| ReadMeta {
                watermark,
                trending_epoch,
            })
            .collect())
    }

    /// One user's state: the records of every partition, merged.
    pub(super) async fn user_state(&self, user: &UserId) -> Result<Option<UserState>, StoreError> {
        let key = self.keys.user(user.as_str());
        let mut conn = self.conn();
        let fields: Vec<(String, String)> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut conn)
            .await?;
        let mut recs = Vec::with_capacity(fields.len());
        // Fields that are not a partition number (`<partition>:o`) are for writers.
        for (field, v) in fields {
            if let Ok(p) = field.parse::<i32>() {
                recs.push((Partition(p), parse_user(&key, &v)?));
            }
        }
        Ok(merged(
            user,
            recs.iter().map(|(p, r)| (*p, r)),
            Caps::of(&self.cfg),
        ))
    }

    /// The `k` most read pages of `window`, over every partition's top list.
    pub(super) async fn popular_pages(
        &self,
        window: Window,
        k: usize,
    ) -> Result<Vec<ScoredPage>, StoreError> {
        if !self.windows.contains(&window) {
            return Ok(Vec::new());
        }
        let label = window.label();
        let keys: Vec<(String, f64)> = self
            .cached_partitions()
            .await?
            .into_iter()
            .map(|p| (self.keys.window_top(p, &label), 1.0))
            .collect();
        self.merged_lists(&keys, k).await
    }

    /// The `k` highest trending scores, every partition's decayed to the latest watermark.
    pub(super) async fn trending_pages(&self, k: usize) -> Result<Vec<ScoredPage>, StoreError> {
        let parts = self.cached_partitions().await?;
        let metas = self.metas(&parts).await?;
        let Some(wm) = metas.iter().filter_map(|m| m.watermark).max() else {
            return Ok(Vec::new());
        };
        let hl = self.cfg.half_life_ms();
        let keys: Vec<(String, f64)> = parts
            .iter()
            .zip(&metas)
            .filter_map(|(p, m)| {
                m.trending_epoch
                    .map(|t0| (self.keys.trending_top(*p), decay_weight(t0, wm, hl)))
            })
            .collect();
        self.merged_lists(&keys, k).await
    }

    /// The `k` pages read most often after `page`, over every partition.
    pub(super) async fn read_next_pages(
        &self,
        page: &PageId,
        k: usize,
    ) -> Result<Vec<ScoredPage>, StoreError> {
        let keys: Vec<(String, f64)> = self
            .cached_partitions()
            .await?
            .into_iter()
            .map(|p| (self.keys.covisit(p, page.as_str()), 1.0))
            .collect();
        self.merged_lists(&keys, k).await
    }

    /// Each page's `issued` time, else its first-seen time.
    pub(super) async fn page_recency(
        &self,
        pages: &[PageId],
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if pages.is_empty() {
            return Ok(Vec::new());
        }
        let names: Vec<&str> = pages.iter().map(PageId::as_str).collect();
        let mut pipe = redis::pipe();
        pipe.cmd("ZMSCORE").arg(self.keys.issued()).arg(&names);
        pipe.cmd("ZMSCORE").arg(self.keys.seen()).arg(&names);
        let mut conn = self.conn();
        let (issued, seen): (Vec<Option<f64>>, Vec<Option<f64>>) =
            pipe.query_async(&mut conn).await?;
        Ok(issued
            .into_iter()
            .zip(seen)
            .map(|(i, s)| i.or(s).map(|t| t as i64))
            .collect())
    }

    /// The latest watermark of any partition.
    pub(super) async fn max_watermark(&self) -> Result<Option<i64>, StoreError> {
        let parts = self.cached_partitions().await?;
        Ok(self
            .metas(&parts)
            .await?
            .into_iter()
            .filter_map(|m| m.watermark)
            .max())
    }

    /// The partitions with state (the stored set), sorted.
    pub(super) async fn stored_partitions(&self) -> Result<Vec<Partition>, StoreError> {
        let mut conn = self.conn();
        let mut parts: Vec<Partition> = redis::cmd("SMEMBERS")
            .arg(self.keys.partitions())
            .query_async(&mut conn)
            .await?;
        parts.sort_unstable();
        Ok(parts)
    }
}
