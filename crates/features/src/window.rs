//! Event-time window arithmetic, shared by both stores (the Redis scripts implement the
//! same formulas; the conformance suite holds them to it).
//!
//! Counts are kept in buckets of `B` ms (bucket index `floor(ts / B)`). A window of `W`
//! ms at watermark `wm` holds the `W / B` most recent buckets, the current partial one
//! included: the events with `ts` in `[(floor(wm/B) − W/B + 1)·B, wm]`. It slides one
//! bucket at a time, and a bucket leaves every window once it is older than the longest
//! one, which is when it is deleted: state stays bounded by the longest window.
//!
//! The trending score of a page is `Σ 2^((ts − wm)/h)` over its events (half-life `h`).
//! Stored scores are relative to an epoch `t0 = floor(wm / R)·R` (`R` = [`REBASE_HALF_LIVES`]
//! half-lives), so they stay within `2^R/h` and never overflow; when the epoch moves the
//! stored scores are rescaled once and negligible ones dropped.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Half-lives between two trending epochs.
pub const REBASE_HALF_LIVES: i64 = 16;

/// Trending scores below this (relative to the epoch) are dropped at a rebase: such a
/// page's last read weighs less than a millionth of a fresh one.
pub const TRENDING_MIN_SCORE: f64 = 1e-6;

/// A popularity window, a whole number of hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    hours: u32,
}

impl Window {
    /// A window of `hours` hours.
    pub const fn hours(hours: u32) -> Self {
        Self { hours }
    }

    /// Its length in hours.
    pub fn as_hours(self) -> u32 {
        self.hours
    }

    /// Its length in ms.
    pub fn duration_ms(self) -> i64 {
        i64::from(self.hours) * newsrec_core::time::HOUR_MS
    }

    /// The label used in keys, metrics and the API: `1h`, `6h`, `24h`.
    pub fn label(self) -> String {
        format!("{}h", self.hours)
    }

    /// Parses a label (`6h`, or a bare number of hours).
    pub fn parse(s: &str) -> Option<Self> {
        let n = s.strip_suffix('h').unwrap_or(s);
        n.parse::<u32>().ok().filter(|h| *h > 0).map(Self::hours)
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}h", self.hours)
    }
}

/// The bucket an event time falls in.
pub fn bucket_of(ts: i64, bucket_ms: i64) -> i64 {
    ts.div_euclid(bucket_ms)
}

/// The newest bucket index that has left a window of `window_ms` at watermark `wm`:
/// buckets `<= lowest_out(..)` are outside it.
pub fn lowest_out(wm: i64, window_ms: i64, bucket_ms: i64) -> i64 {
    bucket_of(wm, bucket_ms) - window_ms / bucket_ms
}

/// Whether bucket `bucket` is inside the window at watermark `wm`.
pub fn in_window(bucket: i64, wm: i64, window_ms: i64, bucket_ms: i64) -> bool {
    bucket > lowest_out(wm, window_ms, bucket_ms) && bucket <= bucket_of(wm, bucket_ms)
}

/// The trending epoch for watermark `wm`.
pub fn trending_epoch(wm: i64, half_life_ms: i64) -> i64 {
    let r = REBASE_HALF_LIVES * half_life_ms;
    wm.div_euclid(r) * r
}

/// `2^((ts − reference)/h)`: one event's trending weight relative to `reference`.
pub fn decay_weight(ts: i64, reference: i64, half_life_ms: i64) -> f64 {
    ((ts - reference) as f64 / half_life_ms as f64).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const B: i64 = 300_000;

    #[test]
    fn labels_round_trip() {
        for h in [1, 6, 24, 168] {
            assert_eq!(
                Window::parse(&Window::hours(h).label()),
                Some(Window::hours(h))
            );
        }
        assert_eq!(Window::parse("0h"), None);
        assert_eq!(Window::parse("x"), None);
    }

    #[test]
    fn window_edges() {
        let h = Window::hours(1).duration_ms();
        let wm = 10 * h + 7 * 60_000;
        // The current bucket and the eleven before it are in a one-hour window.
        assert!(in_window(bucket_of(wm, B), wm, h, B));
        assert!(in_window(bucket_of(wm - 11 * B, B), wm, h, B));
        assert!(!in_window(bucket_of(wm - 12 * B, B), wm, h, B));
    }

    proptest! {
        /// The bucket rule equals the direct definition on event times.
        #[test]
        fn bucket_rule_matches_time_range(ts in 0i64..10_000_000_000, lag in 0i64..200_000_000, hours in 1u32..48) {
            let w = Window::hours(hours).duration_ms();
            let wm = ts + lag;
            let lo = (wm.div_euclid(B) - w / B + 1) * B;
            prop_assert_eq!(in_window(bucket_of(ts, B), wm, w, B), ts >= lo && ts <= wm);
        }

        /// Weights relative to any epoch give the same ranking and the same score at wm.
        #[test]
        fn rebased_weights_agree(ts in 0i64..1_000_000_000, wm_lag in 0i64..100_000_000) {
            let h = 3_600_000;
            let wm = ts + wm_lag;
            let t0 = trending_epoch(wm, h);
            let direct = decay_weight(ts, wm, h);
            let via_epoch = decay_weight(ts, t0, h) * decay_weight(t0, wm, h);
            prop_assert!((direct - via_epoch).abs() <= 1e-12 * direct.max(1e-300));
        }
    }
}
