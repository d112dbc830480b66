//! Domain types shared by every newsrec crate.
//!
//! Everything here is pure: no I/O beyond reading a config file, no async.
//!
//! # Layout
//! - `ids`: [`UserId`], [`PageId`], [`EventId`], parsed once at the edge.
//! - `tier`: [`UserType`], [`Tier`] and [`route_tier`], the one routing rule that the
//!   API and the offline evaluation both call.
//! - `event`: [`ClickEvent`] and its JSON codec; [`RejectReason`] says why a payload
//!   was set aside (dead-letter).
//! - `engagement`: [`Engagement`] cleaning and the engagement score.
//! - `user_features`: [`UserAggregates`], the per-user feature definition shared by the live
//!   consumer and batch training.
//! - `read_set`: [`ReadSet`], a reader's read pages, compact and bounded, never
//!   recommended again.
//! - `refined`: file and column names of the refined Parquet data.
//! - `config`: layered config loading (defaults → file → `NEWSREC_*` env), and the
//!   [`Paths`] every command shares.
//! - `served`: [`ServedList`] and [`ServedRecord`], the served-list log's records.
//! - `time`: event-time helpers.

mod config;
mod engagement;
mod event;
mod ids;
mod read_set;
pub mod refined;
mod served;
mod tier;
pub mod time;
mod user_features;

pub use config::{ConfigError, EnvAlias, Paths, load_file, load_settings};
pub use engagement::{Engagement, EngagementCaps};
pub use event::{ClickEvent, MAX_EVENT_BYTES, RejectReason, RejectedEvent};
pub use ids::{EventId, ID_PATTERN, IdError, MAX_ID_LEN, PageId, RecId, UserId};
pub use read_set::{DEFAULT_READ_SET_MAX, ReadLookup, ReadSet, page_hash};
pub use served::{CONTROL, ServedList, ServedRecord};
pub use tier::{SEMI_LOGGED_MIN_INTERACTIONS, Tier, UserType, route_tier};
pub use user_features::{USER_FEATURE_DIM, USER_FEATURE_NAMES, UserAggregates};

/// Whether an operation that failed may succeed when tried again.
///
/// Library errors implement this so callers (the consumer above all) can choose between
/// retrying with backoff and setting the input aside.
pub trait Retryable {
    /// `true` when the failure is transient (network, timeouts, a service restarting).
    fn is_retryable(&self) -> bool;
}
