//! The refined data set that `newsrec data process` writes and everything downstream
//! (replay, training, evaluation, serving) reads: file names and column names, in one
//! place so writers and readers cannot drift apart.
//!
//! Times are `Int64` epoch milliseconds; ids and text are `String`; counts are `Int64`.

/// One row per interaction (exploded from the per-user training lists), cleaned, sorted
/// by `ts`.
pub const INTERACTIONS_FILE: &str = "interactions.parquet";
/// One row per article.
pub const ITEMS_FILE: &str = "items.parquet";
/// One row per training user: type, tier and [`crate::UserAggregates`] sums.
pub const USERS_FILE: &str = "users.parquet";
/// One row per validation interaction (the days after training).
pub const VALIDATION_FILE: &str = "validation.parquet";
/// Markdown data report (with PNG histograms beside it).
pub const REPORT_FILE: &str = "report.md";
/// JSON summary of the processing run: row counts, malformed rows by reason, caps.
pub const SUMMARY_FILE: &str = "summary.json";

/// Column names.
pub mod col {
    /// User id (`String`).
    pub const USER_ID: &str = "user_id";
    /// `Logged` / `Non-Logged` (`String`).
    pub const USER_TYPE: &str = "user_type";
    /// Article id (`String`).
    pub const PAGE: &str = "page";
    /// Event time, epoch ms (`Int64`).
    pub const TS: &str = "ts";
    /// Clicks inside the page (`Int64`).
    pub const CLICKS: &str = "clicks";
    /// Time on page, ms (`Int64`).
    pub const TIME_ON_PAGE_MS: &str = "time_on_page_ms";
    /// Scroll percent (`Float64`).
    pub const SCROLL_PCT: &str = "scroll_pct";
    /// Page visits (`Int64`).
    pub const PAGE_VISITS: &str = "page_visits";
    /// [`crate::Engagement::score`] (`Float64`).
    pub const ENGAGEMENT: &str = "engagement";
    /// Serving tier name (`String`, [`crate::Tier::as_str`]).
    pub const TIER: &str = "tier";
    /// Interaction count (`Int64`).
    pub const INTERACTIONS: &str = "interactions";
    /// First event time, epoch ms (`Int64`).
    pub const FIRST_TS: &str = "first_ts";
    /// Last event time, epoch ms (`Int64`).
    pub const LAST_TS: &str = "last_ts";
    /// [`crate::UserAggregates::clicks`] (`Float64`).
    pub const SUM_CLICKS: &str = "sum_clicks";
    /// [`crate::UserAggregates::time_min`] (`Float64`).
    pub const SUM_TIME_MIN: &str = "sum_time_min";
    /// [`crate::UserAggregates::scroll`] (`Float64`).
    pub const SUM_SCROLL: &str = "sum_scroll";
    /// [`crate::UserAggregates::visits`] (`Float64`).
    pub const SUM_VISITS: &str = "sum_visits";
    /// [`crate::UserAggregates::engagement`] (`Float64`).
    pub const SUM_ENGAGEMENT: &str = "sum_engagement";
    /// Article URL (`String`).
    pub const URL: &str = "url";
    /// Publication time, epoch ms (`Int64`, nullable).
    pub const ISSUED: &str = "issued";
    /// Last modification time, epoch ms (`Int64`, nullable).
    pub const MODIFIED: &str = "modified";
    /// Headline (`String`).
    pub const TITLE: &str = "title";
    /// Article text (`String`).
    pub const BODY: &str = "body";
    /// Image caption (`String`).
    pub const CAPTION: &str = "caption";
}
