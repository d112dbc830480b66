//! Kinds of generated world: the same G1 layout with different reader behaviour, so a
//! model's quality can be checked on worlds it was not tuned on.

use std::fmt;
use std::str::FromStr;

use newsrec_core::time::HOUR_MS;

/// Which generated world to write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorldKind {
    /// Shaped after the real G1 data (the default).
    #[default]
    G1,
    /// News that ages within hours, readers who mostly follow what is hot.
    FastNews,
    /// Readers with strong, stable tastes and long topical sessions.
    Focused,
    /// Weak tastes, short-lived sessions and a flatter popularity curve.
    Broad,
}

/// Every kind, in a fixed order.
pub const WORLD_KINDS: [WorldKind; 4] = [
    WorldKind::G1,
    WorldKind::FastNews,
    WorldKind::Focused,
    WorldKind::Broad,
];

/// The reader and article behaviour of one kind of world.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Shape {
    /// Share of `Logged` readers.
    pub logged_share: f64,
    /// Probability that a click follows the reader's preferred topics.
    pub preference_strength: f64,
    /// Probability that the next click of a session stays on the previous click's topic.
    pub session_stickiness: f64,
    /// Freshness time constant: an article's pull falls by e every this many ms.
    pub freshness_ms: i64,
    /// Log-normal sigma of article appeal (higher: a few articles take more clicks).
    pub appeal_sigma: f64,
}

/// Articles older than this many freshness time constants are not proposed.
const FRESH_WINDOW_CONSTANTS: i64 = 4;

impl Shape {
    /// Age past which the sampler stops proposing an article.
    pub(super) fn fresh_window_ms(&self) -> i64 {
        FRESH_WINDOW_CONSTANTS * self.freshness_ms
    }
}

impl WorldKind {
    /// The behaviour of this kind of world.
    pub(super) fn shape(self) -> Shape {
        let g1 = Shape {
            // 21% of real G1 readers are signed in.
            logged_share: 0.21,
            preference_strength: 0.85,
            session_stickiness: 0.5,
            freshness_ms: 20 * HOUR_MS,
            // Gini about 0.93, the concentration of real news clicks.
            appeal_sigma: 2.6,
        };
        match self {
            Self::G1 => g1,
            Self::FastNews => Shape {
                preference_strength: 0.6,
                session_stickiness: 0.3,
                freshness_ms: 6 * HOUR_MS,
                ..g1
            },
            Self::Focused => Shape {
                logged_share: 0.35,
                preference_strength: 0.95,
                session_stickiness: 0.8,
                freshness_ms: 48 * HOUR_MS,
                ..g1
            },
            Self::Broad => Shape {
                preference_strength: 0.55,
                session_stickiness: 0.2,
                appeal_sigma: 1.6,
                ..g1
            },
        }
    }

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::G1 => "g1",
            Self::FastNews => "fast-news",
            Self::Focused => "focused",
            Self::Broad => "broad",
        }
    }
}

impl fmt::Display for WorldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WorldKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WORLD_KINDS
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = WORLD_KINDS.iter().map(|k| k.as_str()).collect();
                format!("unknown world {s:?}; one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in WORLD_KINDS {
            assert_eq!(k.as_str().parse::<WorldKind>(), Ok(k));
        }
        assert!("g2".parse::<WorldKind>().is_err());
    }

    /// Each world departs from G1 in the direction its name promises.
    #[test]
    fn worlds_differ_in_the_intended_direction() {
        let g1 = WorldKind::G1.shape();
        let fast = WorldKind::FastNews.shape();
        assert!(fast.freshness_ms < g1.freshness_ms);
        assert!(fast.preference_strength < g1.preference_strength);
        let focused = WorldKind::Focused.shape();
        assert!(focused.preference_strength > g1.preference_strength);
        assert!(focused.session_stickiness > g1.session_stickiness);
        assert!(focused.logged_share > g1.logged_share);
        let broad = WorldKind::Broad.shape();
        assert!(broad.appeal_sigma < g1.appeal_sigma);
        assert!(broad.preference_strength < g1.preference_strength);
        assert!(broad.session_stickiness < g1.session_stickiness);
    }
}
