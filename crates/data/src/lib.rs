//! Data preparation: the raw G1 format, download, the synthetic generator, the refine
//! step and its data report, and reading the refined data back as click events.
//!
//! # Layout
//! - `g1`: the raw G1 format: file layout and headers ([`RawLayout`]), CSV writers
//!   with the dataset's quirks, and polars readers that tag malformed rows with a
//!   [`RowReason`].
//! - `synth`: [`synth::generate`], synthetic G1 data with planted structure.
//! - `download`: [`download::download`], fetch and verify the G1 zip, extract it
//!   atomically.
//! - `refine`: [`refine::process`], raw CSVs → refined Parquet (`newsrec_core::refined`)
//!   with cleaning, engagement, tiers and per-user aggregates.
//! - `report`: the data report (`report.md` + PNG histograms) written by `process`.
//! - `events`: [`events::load_events`], [`events::load_validation_events`] and
//!   [`events::load_issued`], the refined data as the stream's inputs (click events in
//!   event-time order, publication times).

pub mod download;
pub mod events;
mod g1;
pub mod refine;
mod report;
pub mod synth;

pub use g1::{
    ID_PATTERN, ITEM_COLUMNS, ITEMS_DIR, LayoutError, RawLayout, RowReason, TRAINING_COLUMNS,
    TRAINING_DIR, VALIDATION_COLUMNS, VALIDATION_FILE,
};
