//! Readers of the G1 CSV files as polars lazy frames.
//!
//! Every column is read as text and parsed with polars expressions, so one bad value
//! never aborts a file: each row (or exploded interaction) gets a `reason` column that
//! is null when it is well formed and otherwise names the first problem found
//! ([`RowReason`]). Callers count rows by reason and keep the null ones.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use newsrec_core::time::{MAX_PLAUSIBLE_MS, MIN_PLAUSIBLE_MS};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::lists::ID_PATTERN;

/// Why a row or an interaction was set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowReason {
    /// A required field is empty or the line has too few fields.
    MissingField,
    /// The user id is not a valid id.
    BadUserId,
    /// `userType` is neither `Logged` nor `Non-Logged`.
    UnknownUserType,
    /// `historySize` is not an integer.
    BadHistorySize,
    /// The user has no interactions (`historySize` 0, empty lists).
    EmptyHistory,
    /// A validation list is not a numpy printout (no brackets).
    BadList,
    /// A numpy printout was summarised with `...`, so values are lost.
    TruncatedList,
    /// The lists of one row have different lengths.
    ListLengthMismatch,
    /// `historySize` differs from the number of interactions in the lists.
    HistorySizeMismatch,
    /// A page id is not a valid id.
    BadPageId,
    /// A timestamp is not an integer.
    BadTimestamp,
    /// A timestamp is outside 2000…2100.
    AbsurdTimestamp,
    /// An engagement value is not a number.
    BadNumber,
    /// An engagement value is negative (or zero visits).
    NegativeValue,
    /// An item row repeats a page already seen (the first one is kept).
    DuplicatePage,
}

impl RowReason {
    /// Every reason, in the order checks run.
    pub const ALL: [RowReason; 15] = [
        RowReason::MissingField,
        RowReason::BadUserId,
        RowReason::UnknownUserType,
        RowReason::BadHistorySize,
        RowReason::EmptyHistory,
        RowReason::BadList,
        RowReason::TruncatedList,
        RowReason::ListLengthMismatch,
        RowReason::HistorySizeMismatch,
        RowReason::BadPageId,
        RowReason::BadTimestamp,
        RowReason::AbsurdTimestamp,
        RowReason::BadNumber,
        RowReason::NegativeValue,
        RowReason::DuplicatePage,
    ];

    /// The snake_case code used in the `reason` column, summary.json and the report.
    pub fn as_str(self) -> &'static str {
        match self {
            RowReason::MissingField => "missing_field",
            RowReason::BadUserId => "bad_user_id",
            RowReason::UnknownUserType => "unknown_user_type",
            RowReason::BadHistorySize => "bad_history_size",
            RowReason::EmptyHistory => "empty_history",
            RowReason::BadList => "bad_list",
            RowReason::TruncatedList => "truncated_list",
            RowReason::ListLengthMismatch => "list_length_mismatch",
            RowReason::HistorySizeMismatch => "history_size_mismatch",
            RowReason::BadPageId => "bad_page_id",
            RowReason::BadTimestamp => "bad_timestamp",
            RowReason::AbsurdTimestamp => "absurd_timestamp",
            RowReason::BadNumber => "bad_number",
            RowReason::NegativeValue => "negative_value",
            RowReason::DuplicatePage => "duplicate_page",
        }
    }

    /// Parses [`RowReason::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    fn lit(self) -> Expr {
        lit(self.as_str())
    }
}

/// Name of the reason column added by the readers.
pub const REASON: &str = "reason";
/// Name of the per-row interaction count added by the row readers.
pub const N_IN: &str = "n_in";

/// Lazily scans CSV files whose header must be exactly `columns`, every column as text.
///
/// Headers are checked up front (a file with other columns is not G1 and is an error,
/// not a malformed row). Quoted fields may span lines. Short lines yield nulls, which
/// the row readers report as [`RowReason::MissingField`].
pub fn scan_csv_strings(paths: &[PathBuf], columns: &[&str]) -> Result<LazyFrame, ReadError> {
    let schema: Schema = columns
        .iter()
        .map(|c| Field::new((*c).into(), DataType::String))
        .collect();
    let schema = Arc::new(schema);
    let mut frames = Vec::with_capacity(paths.len());
    for path in paths {
        check_header(path, columns)?;
        let text = path
            .to_str()
            .ok_or_else(|| ReadError::NonUtf8Path(path.clone()))?;
        let lf = LazyCsvReader::new(PlRefPath::new(text))
            .with_has_header(true)
            .with_schema(Some(schema.clone()))
            .with_missing_is_null(true)
            .with_truncate_ragged_lines(true)
            .finish()
            .map_err(|source| ReadError::Polars {
                path: path.clone(),
                source,
            })?;
        frames.push(lf);
    }
    if frames.is_empty() {
        return Ok(DataFrame::empty_with_schema(&schema).lazy());
    }
    concat(
        frames,
        UnionArgs {
            parallel: true,
            rechunk: false,
            ..Default::default()
        },
    )
    .map_err(|source| ReadError::Polars {
        path: paths[0].clone(),
        source,
    })
}

fn check_header(path: &Path, columns: &[&str]) -> Result<(), ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut first = String::new();
    BufReader::new(std::fs::File::open(path).map_err(io)?)
        .read_line(&mut first)
        .map_err(io)?;
    let found = first
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\r', '\n']);
    if found != columns.join(",") {
        return Err(ReadError::Header {
            path: path.to_path_buf(),
            expected: columns.join(","),
            found: found.chars().take(200).collect(),
        });
    }
    Ok(())
}

/// Why raw files could not be read at all (as opposed to malformed rows, which are
/// counted and never stop a run).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The header is not the G1 header of this kind of file.
    #[error("{path} is not a G1 file: header {found:?}, expected {expected:?}")]
    Header {
        /// The file.
        path: PathBuf,
        /// The G1 header.
        expected: String,
        /// What the file starts with.
        found: String,
    },
    /// Paths are handed to polars as text.
    #[error("path {0} is not valid UTF-8")]
    NonUtf8Path(PathBuf),
    /// polars could not set up the scan.
    #[error("cannot scan {path}: {source}")]
    Polars {
        /// The (first) file.
        path: PathBuf,
        /// The underlying error.
        source: PolarsError,
    },
}

fn null_str() -> Expr {
    lit(NULL).cast(DataType::String)
}

fn is_id(e: Expr) -> Expr {
    e.str().contains(lit(ID_PATTERN), true)
}

fn user_type_ok(e: Expr) -> Expr {
    e.clone().eq(lit("Logged")).or(e.eq(lit("Non-Logged")))
}

fn plausible(ts: Expr) -> Expr {
    ts.clone()
        .gt_eq(lit(MIN_PLAUSIBLE_MS))
        .and(ts.lt(lit(MAX_PLAUSIBLE_MS)))
}

/// The training lists, in the order they are exploded, with their output names.
const TRAINING_LISTS: [(&str, &str); 6] = [
    ("history", "page"),
    ("timestampHistory", "ts"),
    ("numberOfClicksHistory", "clicks"),
    ("timeOnPageHistory", "time_on_page_ms"),
    ("scrollPercentageHistory", "scroll_pct"),
    ("pageVisitsCountHistory", "page_visits"),
];

/// One row per training user: `user_id`, `user_type`, the six lists split on `", "`
/// (named `page`, `ts`, `clicks`, `time_on_page_ms`, `scroll_pct`, `page_visits`),
/// [`N_IN`] (interactions the row claims, by its `history` list) and [`REASON`].
pub fn training_rows(raw: LazyFrame) -> LazyFrame {
    let split = |c: &str| col(c).str().split(lit(", "));
    let len = |c: &str| col(c).list().len();
    let required = ["userId", "userType", "historySize"]
        .iter()
        .chain(TRAINING_LISTS.iter().map(|(raw, _)| raw))
        .map(|c| col(*c).is_null())
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let size = col("historySize")
        .str()
        .strip_chars(lit(NULL))
        .cast(DataType::Int64);
    let lengths_differ = TRAINING_LISTS[1..]
        .iter()
        .map(|(_, name)| len(name).neq(len("page")))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let mut lists: Vec<Expr> = TRAINING_LISTS
        .iter()
        .map(|(raw, name)| split(raw).alias(*name))
        .collect();
    lists.push(col("userId").str().strip_chars(lit(NULL)).alias("user_id"));
    lists.push(col("userType").alias("user_type"));
    lists.push(size.alias("history_size"));
    raw.with_columns(lists)
        .with_columns([
            when(
                col("history_size")
                    .eq(lit(0i64))
                    .and(col("history").is_null()),
            )
            .then(RowReason::EmptyHistory.lit())
            .when(required)
            .then(RowReason::MissingField.lit())
            .when(is_id(col("user_id")).not())
            .then(RowReason::BadUserId.lit())
            .when(user_type_ok(col("user_type")).not())
            .then(RowReason::UnknownUserType.lit())
            .when(col("history_size").is_null())
            .then(RowReason::BadHistorySize.lit())
            .when(lengths_differ)
            .then(RowReason::ListLengthMismatch.lit())
            .when(col("history_size").neq(len("page")))
            .then(RowReason::HistorySizeMismatch.lit())
            .otherwise(null_str())
            .alias(REASON),
            len("page")
                .fill_null(lit(0u32))
                .cast(DataType::Int64)
                .alias(N_IN),
        ])
        .select(
            [col("user_id"), col("user_type")]
                .into_iter()
                .chain(TRAINING_LISTS.iter().map(|(_, name)| col(*name)))
                .chain([col(N_IN), col(REASON)])
                .collect::<Vec<_>>(),
        )
}

/// One row per interaction of the well-formed rows of [`training_rows`]: `user_id`,
/// `user_type`, `page`, `ts` (Int64), `clicks`, `time_on_page_ms`, `page_visits`
/// (Int64), `scroll_pct` (Float64) and [`REASON`] for values that do not parse.
pub fn explode_training(rows: LazyFrame) -> LazyFrame {
    let names: Vec<&str> = TRAINING_LISTS.iter().map(|(_, n)| *n).collect();
    let int = |c: &str| col(c).cast(DataType::Int64);
    let numbers_bad = [
        int("clicks").is_null(),
        int("time_on_page_ms").is_null(),
        int("page_visits").is_null(),
        col("scroll_pct").is_null(),
        col("scroll_pct").is_nan(),
    ]
    .into_iter()
    .reduce(|a, b| a.or(b))
    .unwrap_or(lit(false));
    let negative = col("clicks")
        .lt(lit(0i64))
        .or(col("time_on_page_ms").lt(lit(0i64)))
        .or(col("scroll_pct").lt(lit(0.0)))
        .or(col("page_visits").lt(lit(1i64)));
    rows.filter(col(REASON).is_null())
        .select(
            [col("user_id"), col("user_type")]
                .into_iter()
                .chain(names.iter().map(|n| col(*n)))
                .collect::<Vec<_>>(),
        )
        .explode(
            by_name(names.clone(), true, false),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .with_columns([
            int("ts"),
            int("clicks"),
            int("time_on_page_ms"),
            int("page_visits"),
            col("scroll_pct").cast(DataType::Float64),
        ])
        .with_column(
            when(is_id(col("page")).not())
                .then(RowReason::BadPageId.lit())
                .when(col("ts").is_null())
                .then(RowReason::BadTimestamp.lit())
                .when(plausible(col("ts")).not())
                .then(RowReason::AbsurdTimestamp.lit())
                .when(numbers_bad)
                .then(RowReason::BadNumber.lit())
                .when(negative)
                .then(RowReason::NegativeValue.lit())
                .otherwise(null_str())
                .alias(REASON),
        )
}

/// Values of a numpy printout: runs of characters that are not whitespace, brackets
/// or quotes.
const NUMPY_VALUE: &str = r#"[^\s\[\]'"]+"#;

/// One row per validation user: `user_id`, `user_type`, `page` and `ts` lists parsed
/// from the numpy printouts, [`N_IN`] and [`REASON`].
pub fn validation_rows(raw: LazyFrame) -> LazyFrame {
    let required = ["userId", "userType", "history", "timestampHistory"]
        .iter()
        .map(|c| col(*c).is_null())
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let bracketed = |c: &str| {
        let t = col(c).str().strip_chars(lit(NULL));
        t.clone()
            .str()
            .starts_with(lit("["))
            .and(t.str().ends_with(lit("]")))
    };
    let truncated = col("history")
        .str()
        .contains_literal(lit("..."))
        .or(col("timestampHistory").str().contains_literal(lit("...")));
    raw.with_columns([
        col("userId").str().strip_chars(lit(NULL)).alias("user_id"),
        col("userType").alias("user_type"),
        col("history")
            .str()
            .extract_all(lit(NUMPY_VALUE))
            .alias("page"),
        col("timestampHistory")
            .str()
            .extract_all(lit(NUMPY_VALUE))
            .alias("ts"),
    ])
    .with_columns([
        when(required)
            .then(RowReason::MissingField.lit())
            .when(is_id(col("user_id")).not())
            .then(RowReason::BadUserId.lit())
            .when(user_type_ok(col("user_type")).not())
            .then(RowReason::UnknownUserType.lit())
            .when(
                bracketed("history")
                    .and(bracketed("timestampHistory"))
                    .not(),
            )
            .then(RowReason::BadList.lit())
            .when(truncated)
            .then(RowReason::TruncatedList.lit())
            .when(col("page").list().len().neq(col("ts").list().len()))
            .then(RowReason::ListLengthMismatch.lit())
            .when(col("page").list().len().eq(lit(0u32)))
            .then(RowReason::EmptyHistory.lit())
            .otherwise(null_str())
            .alias(REASON),
        col("page")
            .list()
            .len()
            .fill_null(lit(0u32))
            .cast(DataType::Int64)
            .alias(N_IN),
    ])
    .select([
        col("user_id"),
        col("user_type"),
        col("page"),
        col("ts"),
        col(N_IN),
        col(REASON),
    ])
}

/// One row per interaction of the well-formed rows of [`validation_rows`]: `user_id`,
/// `user_type`, `page`, `ts` (Int64) and [`REASON`].
pub fn explode_validation(rows: LazyFrame) -> LazyFrame {
    rows.filter(col(REASON).is_null())
        .select([col("user_id"), col("user_type"), col("page"), col("ts")])
        .explode(
            by_name(["page", "ts"], true, false),
            ExplodeOptions {
                empty_as_null: false,
                keep_nulls: false,
            },
        )
        .with_column(col("ts").cast(DataType::Int64))
        .with_column(
            when(is_id(col("page")).not())
                .then(RowReason::BadPageId.lit())
                .when(col("ts").is_null())
                .then(RowReason::BadTimestamp.lit())
                .when(plausible(col("ts")).not())
                .then(RowReason::AbsurdTimestamp.lit())
                .otherwise(null_str())
                .alias(REASON),
        )
}

/// Parses `issued`/`modified` (`2022-06-18 20:37:45+00:00`, optionally with fractional
/// seconds) into epoch ms.
pub fn parse_g1_datetime(s: &str) -> Option<i64> {
    let s = s.trim();
    chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%:z")
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z"))
        .ok()
        .map(|d| d.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip() {
        for r in RowReason::ALL {
            assert_eq!(RowReason::parse(r.as_str()), Some(r));
        }
    }

    #[test]
    fn g1_datetimes_parse() {
        assert_eq!(
            parse_g1_datetime("2022-06-18 20:37:45+00:00"),
            Some(1_655_584_665_000)
        );
        assert_eq!(
            parse_g1_datetime("2022-06-18 17:37:45-03:00"),
            Some(1_655_584_665_000)
        );
        assert_eq!(
            parse_g1_datetime("2022-06-18 20:37:45.5+00:00"),
            Some(1_655_584_665_500)
        );
        assert_eq!(parse_g1_datetime("18/06/2022"), None);
    }
}
