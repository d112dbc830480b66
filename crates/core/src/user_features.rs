//! The per-user feature definition, shared by the live consumer (which keeps the sums
//! in Redis) and batch training (which computes them from refined interactions).
//!
//! Every field is a sum, a minimum or a maximum, so aggregates of disjoint event sets
//! [`merge`](UserAggregates::merge) exactly: the consumer pre-aggregates a batch and
//! adds it to the stored sums, and the result equals aggregating all events at once.

use serde::{Deserialize, Serialize};

use crate::engagement::{Engagement, EngagementCaps};

/// Length of [`UserAggregates::vector`].
pub const USER_FEATURE_DIM: usize = 10;

/// Names of the entries of [`UserAggregates::vector`], in order.
pub const USER_FEATURE_NAMES: [&str; USER_FEATURE_DIM] = [
    "log_interactions",
    "mean_clicks",
    "mean_time_min",
    "mean_scroll",
    "mean_visits",
    "mean_engagement",
    "log_clicks",
    "log_time_min",
    "log_visits",
    "clicks_per_visit",
];

/// Running sums of one user's interactions.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct UserAggregates {
    /// Number of interactions.
    pub interactions: u64,
    /// Sum of clicks, clamped per interaction.
    pub clicks: f64,
    /// Sum of minutes on page, clamped per interaction.
    pub time_min: f64,
    /// Sum of scroll fractions (0..=1), clamped per interaction.
    pub scroll: f64,
    /// Sum of page visits, clamped per interaction.
    pub visits: f64,
    /// Sum of engagement scores.
    pub engagement: f64,
    /// Earliest event time seen (epoch ms); meaningless when `interactions == 0`.
    pub first_ts: i64,
    /// Latest event time seen (epoch ms); meaningless when `interactions == 0`.
    pub last_ts: i64,
}

impl UserAggregates {
    /// Adds one interaction at event time `ts`.
    pub fn add(&mut self, e: &Engagement, ts: i64) {
        let c = e.clamped(&EngagementCaps::default());
        self.merge(&UserAggregates {
            interactions: 1,
            clicks: f64::from(c.clicks),
            time_min: c.time_min(),
            scroll: c.scroll_pct / 100.0,
            visits: f64::from(c.page_visits),
            engagement: e.score(),
            first_ts: ts,
            last_ts: ts,
        });
    }

    /// Adds the aggregates of a disjoint set of interactions.
    pub fn merge(&mut self, other: &UserAggregates) {
        if other.interactions == 0 {
            return;
        }
        if self.interactions == 0 {
            self.first_ts = other.first_ts;
            self.last_ts = other.last_ts;
        } else {
            self.first_ts = self.first_ts.min(other.first_ts);
            self.last_ts = self.last_ts.max(other.last_ts);
        }
        self.interactions += other.interactions;
        self.clicks += other.clicks;
        self.time_min += other.time_min;
        self.scroll += other.scroll;
        self.visits += other.visits;
        self.engagement += other.engagement;
    }

    /// The feature vector the semi-logged clustering model is fitted on and places live
    /// users with; see [`USER_FEATURE_NAMES`]. All zeros for a user with no interactions.
    pub fn vector(&self) -> [f64; USER_FEATURE_DIM] {
        if self.interactions == 0 {
            return [0.0; USER_FEATURE_DIM];
        }
        let n = self.interactions as f64;
        [
            n.ln_1p(),
            self.clicks / n,
            self.time_min / n,
            self.scroll / n,
            self.visits / n,
            self.engagement / n,
            self.clicks.ln_1p(),
            self.time_min.ln_1p(),
            self.visits.ln_1p(),
            self.clicks / self.visits.max(1.0),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn engagement() -> impl Strategy<Value = (Engagement, i64)> {
        (
            0u32..500,
            0u64..4_000_000,
            0.0f64..300.0,
            1u32..20,
            0i64..10_000_000,
        )
            .prop_map(|(clicks, t, s, v, ts)| {
                (
                    Engagement {
                        clicks,
                        time_on_page_ms: t,
                        scroll_pct: s,
                        page_visits: v,
                    },
                    ts,
                )
            })
    }

    proptest! {
        #[test]
        fn merge_of_parts_equals_whole(events in proptest::collection::vec(engagement(), 0..40), split in 0usize..40) {
            let split = split.min(events.len());
            let mut whole = UserAggregates::default();
            let (mut a, mut b) = (UserAggregates::default(), UserAggregates::default());
            for (i, (e, ts)) in events.iter().enumerate() {
                whole.add(e, *ts);
                if i < split { a.add(e, *ts) } else { b.add(e, *ts) }
            }
            a.merge(&b);
            prop_assert_eq!(a.interactions, whole.interactions);
            prop_assert_eq!(a.first_ts, whole.first_ts);
            prop_assert_eq!(a.last_ts, whole.last_ts);
            for (x, y) in a.vector().iter().zip(whole.vector()) {
                prop_assert!((x - y).abs() < 1e-6 * (1.0 + y.abs()));
            }
        }
    }

    #[test]
    fn empty_user_has_zero_vector() {
        assert_eq!(UserAggregates::default().vector(), [0.0; USER_FEATURE_DIM]);
    }
}
