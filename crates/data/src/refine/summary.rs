//! `summary.json`: what a processing run read, set aside, capped and wrote.

use std::collections::BTreeMap;

use newsrec_core::EngagementCaps;
use serde::{Deserialize, Serialize};

/// Rows and interactions set aside for one reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Source rows (training/validation: one per user; items: one per article) set
    /// aside whole. For reasons found after exploding the lists, 0.
    pub rows: u64,
    /// Interactions lost (every interaction of a dropped row, or the single bad one).
    pub interactions: u64,
}

/// Users and interactions of one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierShare {
    /// Users routed to the tier.
    pub users: u64,
    /// Their refined interactions.
    pub interactions: u64,
}

/// Outlier cleaning of the well-formed interactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cleaning {
    /// Where the caps come from.
    pub caps_source: String,
    /// The caps: a value above its cap is clamped to it; the interaction is kept.
    pub caps: EngagementCaps,
    /// The data's own 99th percentiles (before cleaning), for comparison.
    pub data_p99: EngagementP99,
    /// 99th percentile of interactions per training row (reported, not used to cap).
    pub history_size_p99: f64,
    /// Interactions with a value above the cap, per column (an interaction can exceed
    /// several); those values are clamped to the cap.
    pub above_cap: BTreeMap<String, u64>,
    /// Interactions kept with at least one value clamped to its cap.
    pub capped: u64,
}

/// 99th percentiles of the engagement columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EngagementP99 {
    /// Clicks.
    pub clicks: f64,
    /// Time on page, ms.
    pub time_on_page_ms: f64,
    /// Scroll percent.
    pub scroll_pct: f64,
    /// Page visits.
    pub page_visits: f64,
}

/// Everything `newsrec data process` did, written to `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    /// Training part files read.
    pub training_files: usize,
    /// Training rows (users) read.
    pub training_rows: u64,
    /// Interactions the training rows hold (entries of their `history` lists).
    pub interactions_in: u64,
    /// Malformed training rows/interactions by reason code.
    pub training_malformed: BTreeMap<String, Dropped>,
    /// Interactions set aside as malformed (sum over reasons).
    pub interactions_malformed: u64,
    /// Outlier cleaning.
    pub cleaning: Cleaning,
    /// Interactions written: `interactions_in = interactions_out + interactions_malformed`
    /// (cleaning caps values and removes nothing).
    pub interactions_out: u64,
    /// Users written (users with at least one refined interaction).
    pub users_out: u64,
    /// Users by tier, keyed by [`newsrec_core::Tier::as_str`].
    pub tiers: BTreeMap<String, TierShare>,
    /// Users by type (`Logged`/`Non-Logged`).
    pub user_types: BTreeMap<String, TierShare>,
    /// First and last refined event time (epoch ms).
    pub time_range: Option<(i64, i64)>,
    /// Item part files read.
    pub item_files: usize,
    /// Item rows read.
    pub item_rows: u64,
    /// Malformed item rows by reason code (`rows` only).
    pub items_malformed: BTreeMap<String, Dropped>,
    /// Items kept with an unparseable `issued` or `modified` (the field is null).
    pub items_bad_dates: u64,
    /// Items written.
    pub items_out: u64,
    /// Distinct clicked pages absent from the item files.
    pub clicked_pages_without_item: u64,
    /// Refined interactions on those pages.
    pub interactions_without_item: u64,
    /// Gini coefficient of clicks over clicked pages.
    pub popularity_gini: f64,
    /// Validation rows (users) read.
    pub validation_rows: u64,
    /// Interactions the validation rows hold.
    pub validation_in: u64,
    /// Malformed validation rows/interactions by reason code.
    pub validation_malformed: BTreeMap<String, Dropped>,
    /// Validation interactions written.
    pub validation_out: u64,
    /// Validation users absent from the refined training users.
    pub validation_users_unknown: u64,
    /// Validation interactions at or before the last training event.
    pub validation_before_training_end: u64,
    /// Wall time of the run, ms.
    pub elapsed_ms: u64,
}
