//! Engagement signals of one interaction, their cleaning and the engagement score.

use serde::{Deserialize, Serialize};

/// What the portal measured about one page view. Missing values take the neutral
/// defaults of [`Engagement::default`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Engagement {
    /// Clicks inside the page.
    pub clicks: u32,
    /// Time spent on the page, milliseconds.
    pub time_on_page_ms: u64,
    /// How far the reader scrolled, percent (raw data has values far above 100).
    pub scroll_pct: f64,
    /// Visits to the page.
    pub page_visits: u32,
}

impl Default for Engagement {
    fn default() -> Self {
        Self {
            clicks: 0,
            time_on_page_ms: 0,
            scroll_pct: 0.0,
            page_visits: 1,
        }
    }
}

/// Caps applied to every engagement column before it feeds a score or a feature.
///
/// Raw G1 has outliers in every column (clicks up to 14,562, time on page up to 46M ms,
/// scroll up to 526,275 %). Batch cleaning and the live path both clamp values to these
/// caps and keep the interaction: an outlier value still means the page was read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EngagementCaps {
    /// Clicks per interaction (about the p99 of real G1).
    pub clicks: u32,
    /// Time on page, milliseconds (30 minutes: longer is an idle tab).
    pub time_on_page_ms: u64,
    /// Scroll percent (100 by definition).
    pub scroll_pct: f64,
    /// Visits per interaction (about the p99 of real G1).
    pub page_visits: u32,
}

impl Default for EngagementCaps {
    fn default() -> Self {
        Self {
            clicks: 250,
            time_on_page_ms: 30 * 60 * 1000,
            scroll_pct: 100.0,
            page_visits: 10,
        }
    }
}

impl Engagement {
    /// Whether every column is within `caps` (every refined interaction is, once capped).
    pub fn within(&self, caps: &EngagementCaps) -> bool {
        self.clicks <= caps.clicks
            && self.time_on_page_ms <= caps.time_on_page_ms
            && self.scroll_pct <= caps.scroll_pct
            && self.page_visits <= caps.page_visits
    }

    /// Every column clamped to `caps` (negative or NaN scroll becomes 0).
    pub fn clamped(&self, caps: &EngagementCaps) -> Self {
        let scroll = if self.scroll_pct.is_finite() {
            self.scroll_pct.clamp(0.0, caps.scroll_pct)
        } else {
            0.0
        };
        Self {
            clicks: self.clicks.min(caps.clicks),
            time_on_page_ms: self.time_on_page_ms.min(caps.time_on_page_ms),
            scroll_pct: scroll,
            page_visits: self.page_visits.min(caps.page_visits),
        }
    }

    /// Minutes on the page.
    pub fn time_min(&self) -> f64 {
        self.time_on_page_ms as f64 / 60_000.0
    }

    /// The engagement score of one interaction, after clamping to the default caps.
    ///
    /// `0.25·ln(1+minutes) + 0.17·ln(1+clicks) + 0.35·scroll/100 + 0.22·ln(1+visits)`:
    /// the reference system's weights, on log-compressed and unit-scaled terms so that no
    /// single heavy-tailed column dominates. A quick glance scores about 0.2, a long
    /// read with scrolling and clicks about 1.5. Used as the implicit-feedback strength
    /// in training and as a feature in the live and batch user vectors.
    pub fn score(&self) -> f64 {
        let e = self.clamped(&EngagementCaps::default());
        0.25 * e.time_min().ln_1p()
            + 0.17 * f64::from(e.clicks).ln_1p()
            + 0.35 * e.scroll_pct / 100.0
            + 0.22 * f64::from(e.page_visits).ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn clamps_outliers() {
        let raw = Engagement {
            clicks: 14_562,
            time_on_page_ms: 46_000_000,
            scroll_pct: 526_275.0,
            page_visits: 654,
        };
        let caps = EngagementCaps::default();
        assert!(!raw.within(&caps));
        let c = raw.clamped(&caps);
        assert!(c.within(&caps));
        assert_eq!(c.scroll_pct, 100.0);
    }

    #[test]
    fn longer_reads_score_higher() {
        let glance = Engagement {
            clicks: 1,
            time_on_page_ms: 5_000,
            scroll_pct: 10.0,
            page_visits: 1,
        };
        let read = Engagement {
            clicks: 20,
            time_on_page_ms: 300_000,
            scroll_pct: 90.0,
            page_visits: 2,
        };
        assert!(read.score() > glance.score());
    }

    proptest! {
        #[test]
        fn score_is_finite_and_bounded(clicks in any::<u32>(), t in any::<u64>(), s in any::<f64>(), v in any::<u32>()) {
            let e = Engagement { clicks, time_on_page_ms: t, scroll_pct: s, page_visits: v };
            let score = e.score();
            prop_assert!(score.is_finite());
            prop_assert!((0.0..5.0).contains(&score));
        }
    }
}
