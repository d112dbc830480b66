//! Online quality: clicks attributed to the lists the API served, as counters per
//! (tier, variant, model version), kept per partition exactly once like the rest of the
//! state.
//!
//! # What is attributed
//! The step reads a partition of the clicks topic and the same partition of the served
//! topic (both are keyed by user, so one user's clicks and lists share a partition
//! number; the consumer refuses topics whose partition counts differ). It keeps each
//! user's latest lists (at most [`OnlineConfig::max_lists`], none older than the
//! attribution window) and attributes each click to the list its `rec_id` names, when
//! that list holds the page and is within the window, otherwise to the user's latest
//! list within the window that holds the page. Per list key it counts lists served,
//! lists with at least one attributed click (hits), attributed clicks, the sum of the
//! reciprocal rank of each list's first hit, and attributed clicks by position
//! (`1..=positions`, then one bucket for the rest).
//!
//! A list is counted as served as soon as it is read, before the merge takes it: lists
//! served while no clicks come (a quiet hour, the end of a replay) still count, and only
//! the attributions wait for the clicks to pass them. The state keeps a third offset,
//! the next served record not yet counted, which is never behind the merge's.
//!
//! # Why the counters are a function of the two streams alone
//! The two partitions are merged in event time: each stream's key is its running
//! maximum event time (so each is non-decreasing), and the step always takes the head
//! with the smaller `(key, rank)`, where a list ranks before a click and a click before
//! a watermark mark ([`newsrec_core::ServedRecord::Tick`]) of the same key. That merge
//! is the same sequence however the streams were polled, cut into rounds or restarted:
//! the step only takes a head when the other stream's head is there to compare with, and
//! stops otherwise (the API's watermark marks keep a partition no list is served to
//! moving). Every decision (which list a click goes to, which lists are dropped) is made
//! in that order against keys that never decrease, and the age rule is the same
//! everywhere (a list is usable by an item of key `k` iff its time is within the window
//! of `k`), so dropping aged lists at the end of a step changes nothing later. The rank
//! sum is a float added in merge order, so it is the same bit for bit. The state is
//! stored with both streams' next offsets in one guarded write (`redis_store`), so a
//! step lands whole or not at all. Counting read lists is a function of the served
//! stream's prefix up to the counted offset, which is stored in the same write.

pub(crate) mod codec;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use newsrec_core::{PageId, RecId, ServedList, UserId};
use serde::{Deserialize, Serialize};

use crate::checkpoint::Offset;

pub use codec::{CounterRow, OnlineWrite};

/// Attribution settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OnlineConfig {
    /// How long after a list was served a click may still be attributed to it (event
    /// time, ms).
    pub window_ms: i64,
    /// Most lists kept per user (the oldest goes first).
    pub max_lists: usize,
    /// Positions counted one by one; clicks further down are counted together.
    pub positions: usize,
}

impl Default for OnlineConfig {
    fn default() -> Self {
        Self {
            window_ms: 30 * 60_000,
            max_lists: 20,
            positions: 20,
        }
    }
}

/// A click as the attribution step reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrClick {
    /// Who clicked.
    pub user: UserId,
    /// The page read.
    pub page: PageId,
    /// Event time, epoch ms.
    pub ts: i64,
    /// The list the front end said the click came from.
    pub rec_id: Option<RecId>,
}

/// One message of the clicks topic.
#[derive(Debug, Clone, PartialEq)]
pub enum ClickItem {
    /// A valid click.
    Click(AttrClick),
    /// Not a valid click (the feature consumer sets it aside): skipped.
    Invalid,
}

/// One message of the served topic.
#[derive(Debug, Clone, PartialEq)]
pub enum ServedItem {
    /// An answered list.
    List(Box<ServedList>),
    /// A watermark mark.
    Tick(i64),
    /// Not a valid record: skipped.
    Invalid,
}

/// What the counters are kept per.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CounterKey {
    /// The tier that served the list.
    pub tier: String,
    /// The experiment variant.
    pub variant: String,
    /// The model version that answered.
    pub model_version: String,
}

/// Online counters of one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    /// Lists served.
    pub served: u64,
    /// Lists with at least one attributed click.
    pub hits: u64,
    /// Attributed clicks.
    pub clicks: u64,
    /// Sum over hit lists of 1 / rank of the first attributed click.
    pub rr_sum: f64,
    /// Attributed clicks by position: `1..=positions`, then the rest.
    pub by_position: Vec<u64>,
}

impl Counters {
    /// Adds `other` (sums over partitions or model versions).
    pub fn add(&mut self, other: &Counters) {
        self.served += other.served;
        self.hits += other.hits;
        self.clicks += other.clicks;
        self.rr_sum += other.rr_sum;
        if self.by_position.len() < other.by_position.len() {
            self.by_position.resize(other.by_position.len(), 0);
        }
        for (a, b) in self.by_position.iter_mut().zip(&other.by_position) {
            *a += b;
        }
    }
}

/// A served list a user's clicks may still be attributed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldList {
    /// The list's id.
    #[serde(rename = "r")]
    pub rec_id: RecId,
    /// Event time it was served at (the API's watermark), epoch ms.
    #[serde(rename = "t")]
    pub ts: i64,
    /// What its counters are kept per.
    #[serde(rename = "k")]
    pub key: CounterKey,
    /// The pages, best first.
    #[serde(rename = "p")]
    pub pages: Vec<PageId>,
    /// Whether a click was attributed to it already.
    #[serde(rename = "h")]
    pub hit: bool,
}

/// One partition's attribution state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnlineState {
    /// Next offset of the clicks partition (`None`: nothing read yet).
    pub clicks_next: Option<Offset>,
    /// Next offset of the served partition the merge takes.
    pub served_next: Option<Offset>,
    /// Next offset of the served partition not yet counted as served (at or after
    /// `served_next`; lists are counted when read).
    pub counted_next: Option<Offset>,
    /// Running maximum event time of the clicks read.
    pub clicks_key: Option<i64>,
    /// Running maximum event time of the served records read.
    pub served_key: Option<i64>,
    /// Running maximum event time of the merge (what aged lists are dropped by).
    pub merged_key: Option<i64>,
    /// Each user's lists still usable, oldest first.
    pub users: BTreeMap<UserId, VecDeque<HeldList>>,
    /// The counters per key.
    pub counters: BTreeMap<CounterKey, Counters>,
}

/// Where a partition's attribution state stands in its two streams: what a write is
/// guarded by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OnlineNext {
    /// Next offset of the clicks partition.
    pub clicks: Option<Offset>,
    /// Next offset of the served partition the merge takes.
    pub served: Option<Offset>,
    /// Next offset of the served partition not yet counted.
    pub counted: Option<Offset>,
}

/// What one step took and changed.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// How many of the given clicks it consumed (a prefix).
    pub clicks_used: usize,
    /// How many of the given served records it consumed (a prefix).
    pub served_used: usize,
    /// How many served records it counted (read for the first time).
    pub counted: usize,
    /// Users whose lists changed (or went).
    pub users_changed: BTreeSet<UserId>,
    /// Counter keys that changed.
    pub counters_changed: BTreeSet<CounterKey>,
}

impl Step {
    /// Whether the step consumed anything.
    pub fn moved(&self) -> bool {
        self.clicks_used + self.served_used + self.counted > 0
    }
}

/// Which head the merge takes.
enum Head {
    Served,
    Click,
}

impl OnlineState {
    /// Where the state stands in its streams.
    pub fn next(&self) -> OnlineNext {
        OnlineNext {
            clicks: self.clicks_next,
            served: self.served_next,
            counted: self.counted_next,
        }
    }

    /// Counts the lists of `served` not counted yet, then consumes the longest merged
    /// prefix of `clicks` and `served` (the messages right after `clicks_next` and
    /// `served_next`, in offset order) that can be decided; see the module doc.
    pub fn step(
        &mut self,
        clicks: &[(Offset, ClickItem)],
        served: &[(Offset, ServedItem)],
        cfg: &OnlineConfig,
    ) -> Step {
        let mut st = Step::default();
        self.count(served, cfg, &mut st);
        let (mut i, mut j) = (0, 0);
        loop {
            while let Some((o, ClickItem::Invalid)) = clicks.get(i) {
                self.clicks_next = Some(o.next());
                i += 1;
            }
            while let Some((o, ServedItem::Invalid)) = served.get(j) {
                self.served_next = Some(o.next());
                j += 1;
            }
            let (Some((co, ClickItem::Click(c))), Some((so, s))) = (clicks.get(i), served.get(j))
            else {
                break;
            };
            let ck = self.clicks_key.map_or(c.ts, |k| k.max(c.ts));
            let (s_ts, s_rank) = match s {
                ServedItem::List(l) => (l.event_ts.unwrap_or(i64::MIN), 0),
                ServedItem::Tick(t) => (*t, 2),
                ServedItem::Invalid => unreachable!("skipped above"),
            };
            let sk = self.served_key.map_or(s_ts, |k| k.max(s_ts));
            let head = if (sk, s_rank) <= (ck, 1) {
                Head::Served
            } else {
                Head::Click
            };
            match head {
                Head::Served => {
                    self.served_key = Some(sk);
                    self.merged_key = Some(self.merged_key.map_or(sk, |k| k.max(sk)));
                    if let ServedItem::List(l) = s {
                        self.serve(l, sk, cfg, &mut st);
                    }
                    self.served_next = Some(so.next());
                    j += 1;
                }
                Head::Click => {
                    self.clicks_key = Some(ck);
                    self.merged_key = Some(self.merged_key.map_or(ck, |k| k.max(ck)));
                    self.click(c, ck, cfg, &mut st);
                    self.clicks_next = Some(co.next());
                    i += 1;
                }
            }
        }
        (st.clicks_used, st.served_used) = (i, j);
        // Only the merge moves the key lists age by.
        if i + j > 0 {
            self.drop_aged(cfg, &mut st);
        }
        st
    }

    /// Counts each list of `served` past `counted_next` as served.
    fn count(&mut self, served: &[(Offset, ServedItem)], cfg: &OnlineConfig, st: &mut Step) {
        let from = match self.counted_next {
            Some(n) => served.partition_point(|(o, _)| *o < n),
            None => 0,
        };
        for (o, item) in &served[from..] {
            if let ServedItem::List(l) = item
                && let Some(ck) = counter_key(l)
            {
                self.counter(&ck, cfg).served += 1;
                st.counters_changed.insert(ck);
            }
            self.counted_next = Some(o.next());
            st.counted += 1;
        }
    }

    /// A list the merge took: kept for the user's clicks (it was counted when read).
    fn serve(&mut self, l: &ServedList, key: i64, cfg: &OnlineConfig, st: &mut Step) {
        let (Some(user), Some(ck)) = (&l.user_id, counter_key(l)) else {
            return;
        };
        let lists = self.users.entry(user.clone()).or_default();
        lists.push_back(HeldList {
            rec_id: l.rec_id.clone(),
            ts: l.event_ts.unwrap_or(key),
            key: ck,
            pages: l.pages.clone(),
            hit: false,
        });
        while lists.len() > cfg.max_lists.max(1) {
            lists.pop_front();
        }
        st.users_changed.insert(user.clone());
    }

    /// A click: attributed to the list it names, else to the latest that holds the page.
    fn click(&mut self, c: &AttrClick, key: i64, cfg: &OnlineConfig, st: &mut Step) {
        let Some(lists) = self.users.get_mut(&c.user) else {
            return;
        };
        let usable =
            |l: &HeldList| l.ts >= key.saturating_sub(cfg.window_ms) && l.pages.contains(&c.page);
        let named = c.rec_id.as_ref().and_then(|r| {
            lists
                .iter()
                .rposition(|l| &l.rec_id == r)
                .filter(|i| usable(&lists[*i]))
        });
        let Some(at) = named.or_else(|| lists.iter().rposition(usable)) else {
            return;
        };
        let list = &mut lists[at];
        let rank = list.pages.iter().position(|p| *p == c.page).unwrap_or(0) + 1;
        let first = !list.hit;
        list.hit = true;
        let ck = list.key.clone();
        st.users_changed.insert(c.user.clone());
        let counters = self.counter(&ck, cfg);
        counters.clicks += 1;
        let bucket = rank.min(cfg.positions + 1) - 1;
        counters.by_position[bucket] += 1;
        if first {
            counters.hits += 1;
            counters.rr_sum += 1.0 / rank as f64;
        }
        st.counters_changed.insert(ck);
    }

    fn counter(&mut self, key: &CounterKey, cfg: &OnlineConfig) -> &mut Counters {
        let c = self.counters.entry(key.clone()).or_default();
        if c.by_position.len() < cfg.positions + 1 {
            c.by_position.resize(cfg.positions + 1, 0);
        }
        c
    }

    /// Drops the lists no later item can use (older than the window of the merge's key).
    fn drop_aged(&mut self, cfg: &OnlineConfig, st: &mut Step) {
        let Some(k) = self.merged_key else { return };
        let cut = k.saturating_sub(cfg.window_ms);
        self.users.retain(|u, lists| {
            let before = lists.len();
            lists.retain(|l| l.ts >= cut);
            if lists.len() != before {
                st.users_changed.insert(u.clone());
            }
            !lists.is_empty()
        });
    }

    /// Counters summed per (tier, variant), over model versions.
    pub fn by_tier_variant(&self) -> BTreeMap<(String, String), Counters> {
        let mut out: BTreeMap<(String, String), Counters> = BTreeMap::new();
        for (k, c) in &self.counters {
            out.entry((k.tier.clone(), k.variant.clone()))
                .or_default()
                .add(c);
        }
        out
    }
}

/// What a list's counters are kept per; `None` for lists not attributed (no user or no
/// tier: an article's similar list).
fn counter_key(l: &ServedList) -> Option<CounterKey> {
    let (Some(_), Some(tier)) = (&l.user_id, l.tier) else {
        return None;
    };
    Some(CounterKey {
        tier: tier.as_str().to_owned(),
        variant: l.variant.clone(),
        model_version: l.model_version.clone(),
    })
}

#[cfg(test)]
mod tests;
