//! The generated world: articles with topics, publication times and heavy-tailed
//! appeal, and a sampler that picks what a reader opens at a given moment (appeal ×
//! freshness, within a topic).

use std::ops::Range;

use newsrec_core::time::{DAY_MS, HOUR_MS};
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Exp, LogNormal};
use rayon::prelude::*;

use super::shape::Shape;
use super::vocab::{REGIONS, TOPICS};
use super::{FRESH_FROM_MS, OLDEST_MS, VALIDATION_END_MS, stream_rng};

/// Items per generation chunk (fixed, so output does not depend on thread count).
pub(super) const ITEM_CHUNK: usize = 4096;
/// RNG stream of item metadata.
const ITEM_STREAM: u64 = 1;

/// Share of articles published before the data window (the archive).
const ARCHIVE_SHARE: f64 = 0.12;
/// Share of clicks that go to archive articles.
const ARCHIVE_CLICKS: f64 = 0.03;
/// Share of clicked articles absent from the item files, as in real G1.
const UNLISTED_SHARE: f64 = 0.004;

/// Hourly publishing and reading activity by UTC hour (Brazil is UTC−3: quiet at
/// night, busy from morning to late evening).
pub(super) const DIURNAL: [f64; 24] = [
    9.0, 7.0, 4.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0, 7.0, 9.0, 10.0, 10.0, 10.0, 10.0, 10.0, 9.0,
    9.0, 9.0, 9.0, 9.0, 10.0, 10.0,
];

/// One article.
pub(super) struct Item {
    /// UUID.
    pub page: String,
    /// Index into [`TOPICS`].
    pub topic: u16,
    /// Index into [`REGIONS`], or `None` for a national section URL.
    pub region: Option<u8>,
    /// Publication time, epoch ms.
    pub issued: i64,
    /// Last modification, epoch ms.
    pub modified: i64,
    /// Relative pull of the article (log-normal: a few articles take most clicks).
    pub appeal: f64,
    /// Whether the article appears in the item files.
    pub listed: bool,
}

/// The articles of one topic, arranged for sampling.
#[derive(Default)]
struct TopicIndex {
    /// Recent articles (issued in or just before the window), by publication time.
    fresh: Vec<u32>,
    /// Publication times of `fresh`.
    fresh_issued: Vec<i64>,
    /// Prefix sums of `fresh` appeal (`fresh_cum[i]` = sum of the first `i`).
    fresh_cum: Vec<f64>,
    /// Archive articles.
    archive: Vec<u32>,
    /// Prefix sums of archive appeal.
    archive_cum: Vec<f64>,
}

/// All articles and the per-topic sampling indexes.
pub(super) struct World {
    /// Every article, listed or not.
    pub items: Vec<Item>,
    /// Topic weights for clicks outside a reader's preferences.
    pub topic_pick: WeightedIndex<f64>,
    /// Reader and article behaviour.
    pub shape: Shape,
    topics: Vec<TopicIndex>,
}

/// Uniformly random UUID v4 text.
pub(super) fn uuid(rng: &mut ChaCha8Rng) -> String {
    let a: u64 = rng.random();
    let b: u64 = rng.random();
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// A time on `day_start`'s day at an hour drawn from [`DIURNAL`].
pub(super) fn diurnal_time(
    rng: &mut ChaCha8Rng,
    day_start: i64,
    hours: &WeightedIndex<f64>,
) -> i64 {
    day_start + hours.sample(rng) as i64 * HOUR_MS + rng.random_range(0..HOUR_MS)
}

fn topic_weights() -> Vec<f64> {
    (0..TOPICS.len())
        .map(|k| 1.0 / ((k + 1) as f64).powf(0.6))
        .collect()
}

impl World {
    /// Generates `n` articles of a world shaped by `shape` (deterministic for `seed`).
    pub fn generate(n: usize, seed: u64, shape: Shape) -> Self {
        let chunks: Vec<Range<usize>> = (0..n)
            .step_by(ITEM_CHUNK)
            .map(|s| s..(s + ITEM_CHUNK).min(n))
            .collect();
        let items: Vec<Item> = chunks
            .into_par_iter()
            .flat_map_iter(|r| generate_items(seed, r, shape.appeal_sigma))
            .collect();
        let weights = topic_weights();
        let mut topics: Vec<TopicIndex> =
            (0..TOPICS.len()).map(|_| TopicIndex::default()).collect();
        let mut order: Vec<u32> = (0..items.len() as u32).collect();
        order.sort_by_key(|&i| (items[i as usize].issued, i));
        for i in order {
            let item = &items[i as usize];
            let t = &mut topics[item.topic as usize];
            if item.issued >= FRESH_FROM_MS {
                t.fresh.push(i);
                t.fresh_issued.push(item.issued);
            } else {
                t.archive.push(i);
            }
        }
        for t in &mut topics {
            t.fresh_cum = prefix(&t.fresh, &items);
            t.archive_cum = prefix(&t.archive, &items);
        }
        let topic_pick =
            WeightedIndex::new(&weights).expect("topic weights are positive constants");
        Self {
            items,
            topic_pick,
            shape,
            topics,
        }
    }

    /// The article a reader interested in `topic` opens at time `t`: proportional to
    /// appeal × exp(−age / freshness) among articles already published, with a small share
    /// of archive reads. Falls back to wider pools when a topic has nothing recent.
    pub fn sample(&self, rng: &mut ChaCha8Rng, topic: usize, t: i64) -> u32 {
        let idx = &self.topics[topic];
        if !idx.archive.is_empty() && rng.random_bool(ARCHIVE_CLICKS) {
            return pick(rng, &idx.archive, &idx.archive_cum, 0..idx.archive.len());
        }
        let hi = idx.fresh_issued.partition_point(|&x| x <= t);
        let lo = idx
            .fresh_issued
            .partition_point(|&x| x < t - self.shape.fresh_window_ms());
        if lo < hi {
            let freshness = self.shape.freshness_ms as f64;
            let mut last = idx.fresh[lo];
            // Rejection sampling: propose by appeal within the window, accept by
            // freshness; about one in four proposals is accepted.
            for _ in 0..32 {
                last = pick(rng, &idx.fresh, &idx.fresh_cum, lo..hi);
                let age = (t - self.items[last as usize].issued) as f64;
                if rng.random::<f64>() < (-age / freshness).exp() {
                    break;
                }
            }
            return last;
        }
        if hi > 0 {
            return pick(rng, &idx.fresh, &idx.fresh_cum, 0..hi);
        }
        if !idx.archive.is_empty() {
            return pick(rng, &idx.archive, &idx.archive_cum, 0..idx.archive.len());
        }
        // A topic without any article yet (tiny worlds): any article at all.
        rng.random_range(0..self.items.len() as u32)
    }
}

fn prefix(ids: &[u32], items: &[Item]) -> Vec<f64> {
    let mut cum = Vec::with_capacity(ids.len() + 1);
    let mut acc = 0.0;
    cum.push(0.0);
    for &i in ids {
        acc += items[i as usize].appeal;
        cum.push(acc);
    }
    cum
}

/// Picks from `ids[range]` proportionally to appeal, using the prefix sums `cum`.
fn pick(rng: &mut ChaCha8Rng, ids: &[u32], cum: &[f64], range: Range<usize>) -> u32 {
    let (a, b) = (cum[range.start], cum[range.end]);
    let x = a + rng.random::<f64>() * (b - a);
    let pos = cum[range.start + 1..=range.end].partition_point(|&c| c <= x);
    ids[(range.start + pos).min(range.end - 1)]
}

fn generate_items(seed: u64, range: Range<usize>, appeal_sigma: f64) -> Vec<Item> {
    let mut rng = stream_rng(seed, ITEM_STREAM, range.start as u64);
    // Distribution parameters below are constants, valid by construction.
    let topic_pick = WeightedIndex::new(topic_weights()).expect("positive weights");
    let hours = WeightedIndex::new(DIURNAL).expect("positive weights");
    // Every world's sigma is a positive constant.
    let appeal = LogNormal::new(0.0, appeal_sigma).expect("valid sigma");
    let archive_age = Exp::new(1.0 / 400.0).expect("positive rate");
    let edit_delay = Exp::new(1.0 / (3.0 * HOUR_MS as f64)).expect("positive rate");
    let fresh_days = (VALIDATION_END_MS - FRESH_FROM_MS) / DAY_MS;
    range
        .map(|_| {
            let page = uuid(&mut rng);
            let topic = topic_pick.sample(&mut rng) as u16;
            let region = rng
                .random_bool(0.5)
                .then(|| rng.random_range(0..REGIONS.len()) as u8);
            let archived = rng.random_bool(ARCHIVE_SHARE);
            let issued = if archived {
                let age_days: f64 = archive_age.sample(&mut rng);
                (FRESH_FROM_MS - ((age_days + 1.0) * DAY_MS as f64) as i64).max(OLDEST_MS)
            } else {
                let day = rng.random_range(0..fresh_days);
                diurnal_time(&mut rng, FRESH_FROM_MS + day * DAY_MS, &hours)
            };
            let modified = if rng.random_bool(0.35) {
                issued
            } else {
                issued + edit_delay.sample(&mut rng) as i64
            };
            let mut appeal = appeal.sample(&mut rng);
            if archived {
                appeal *= 0.2;
            }
            Item {
                page,
                topic,
                region,
                issued,
                modified,
                appeal,
                listed: !rng.random_bool(UNLISTED_SHARE),
            }
        })
        .collect()
}
