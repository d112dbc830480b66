//! The G1 raw format: where the files sit, their headers, and the byte-level quirks of
//! their fields (lists joined by `", "`, numpy printouts, minimally quoted CSV).
//!
//! Writers ([`write`]) produce files byte-compatible with the distributed dataset; the
//! matching readers are polars expressions ([`read`]) so `newsrec data process` parses
//! every part in parallel without a per-row Rust loop.

mod layout;
mod lists;
mod read;
#[cfg(test)]
mod roundtrip;
mod write;

pub use layout::{
    ITEM_COLUMNS, ITEM_PARTS, ITEMS_DIR, LayoutError, RawLayout, TRAINING_COLUMNS, TRAINING_DIR,
    TRAINING_PARTS, VALIDATION_COLUMNS, VALIDATION_FILE, item_part_path, training_part_path,
};
pub use lists::ID_PATTERN;
pub use read::{
    N_IN, REASON, ReadError, RowReason, explode_training, explode_validation, parse_g1_datetime,
    scan_csv_strings, training_rows, validation_rows,
};
pub use write::{CsvWriter, ItemRecord, TrainingRecord, ValidationRecord};
