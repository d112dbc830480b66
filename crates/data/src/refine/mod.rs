//! `newsrec data process`: raw G1 CSVs → the refined Parquet data set of
//! [`newsrec_core::refined`], plus `summary.json` and the data report.
//!
//! Every raw part is parsed with polars; malformed rows are tagged with a
//! [`RowReason`], counted and left out (never fatal, never silent);
//! engagement values above [`EngagementCaps`] are clamped to them (the interaction is
//! kept: a read is a read); every interaction gets its
//! [`Engagement::score`](newsrec_core::Engagement::score), and every user their
//! [`UserAggregates`](newsrec_core::UserAggregates) sums and [`route_tier`] tier.

mod aggregates;
mod items;
mod summary;
mod training;
mod validation;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use newsrec_core::refined::{self, col as c};
use newsrec_core::{EngagementCaps, Tier, UserType, route_tier};
use polars::prelude::*;
use tracing::info;

pub use aggregates::user_aggregates;
pub use summary::{Cleaning, Dropped, EngagementP99, ProcessSummary, TierShare};

use crate::g1::{LayoutError, RawLayout, ReadError, RowReason};
use crate::report::{self, ReportData};

/// What to process.
#[derive(Debug, Clone)]
pub struct ProcessConfig {
    /// Raw G1 directory (the layout of [`RawLayout`]).
    pub raw: PathBuf,
    /// Output directory for the refined files, summary and report.
    pub out: PathBuf,
    /// Caps to which outlier engagement values are clamped.
    pub caps: EngagementCaps,
    /// Show stage progress (when stderr is a terminal).
    pub progress: bool,
}

impl ProcessConfig {
    /// Defaults: [`EngagementCaps::default`], no progress bar.
    pub fn new(raw: impl Into<PathBuf>, out: impl Into<PathBuf>) -> Self {
        Self {
            raw: raw.into(),
            out: out.into(),
            caps: EngagementCaps::default(),
            progress: false,
        }
    }
}

/// Why processing failed. Malformed rows never cause this; unreadable files,
/// unexpected headers and failed writes do.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The raw directory does not hold the G1 layout.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A raw file could not be read or is not a G1 file.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A polars stage failed.
    #[error("{stage}: {source}")]
    Polars {
        /// The stage.
        stage: &'static str,
        /// The underlying error.
        source: PolarsError,
    },
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Drawing a report figure failed.
    #[error("cannot draw {path}: {message}")]
    Plot {
        /// The image.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Attaches a stage name to polars errors.
pub(crate) trait Stage<T> {
    fn stage(self, stage: &'static str) -> Result<T, ProcessError>;
}

impl<T> Stage<T> for PolarsResult<T> {
    fn stage(self, stage: &'static str) -> Result<T, ProcessError> {
        self.map_err(|source| ProcessError::Polars { stage, source })
    }
}

/// One kind of interaction rows read and parsed (before exploding into interactions).
pub(crate) struct ParsedRows {
    /// Parsed rows, with a `reason` for the malformed ones.
    pub rows: DataFrame,
    /// Rows read.
    pub n_rows: u64,
    /// Interactions the rows say they hold (`N_IN` summed).
    pub interactions_in: u64,
    /// Rows set aside, by reason.
    pub malformed: BTreeMap<RowReason, Dropped>,
}

/// Reads `paths` as string CSV columns, parses rows with `parse`, and counts what the
/// rows hold and which are malformed: the common start of the training and validation
/// stages.
pub(crate) fn parse_rows(
    paths: &[PathBuf],
    columns: &[&str],
    parse: impl FnOnce(LazyFrame) -> LazyFrame,
    stage: &'static str,
) -> Result<ParsedRows, ProcessError> {
    let raw = crate::g1::scan_csv_strings(paths, columns)?;
    let rows = parse(raw).collect().stage(stage)?;
    let interactions_in = rows
        .column(crate::g1::N_IN)
        .stage(stage)?
        .as_materialized_series()
        .sum::<i64>()
        .stage(stage)?
        .max(0) as u64;
    let malformed = reason_counts(rows.clone().lazy(), Some(crate::g1::N_IN), stage)?;
    Ok(ParsedRows {
        n_rows: rows.height() as u64,
        rows,
        interactions_in,
        malformed,
    })
}

/// Counts of a `reason` column: `(reason, rows, interactions)` per non-null reason.
pub(crate) fn reason_counts(
    lf: LazyFrame,
    interactions: Option<&str>,
    stage: &'static str,
) -> Result<BTreeMap<RowReason, Dropped>, ProcessError> {
    let n = match interactions {
        Some(col_name) => col(col_name).sum().cast(DataType::UInt64),
        None => len().cast(DataType::UInt64),
    };
    let df = lf
        .filter(col(crate::g1::REASON).is_not_null())
        .group_by([col(crate::g1::REASON)])
        .agg([len().cast(DataType::UInt64).alias("rows"), n.alias("n")])
        .collect()
        .stage(stage)?;
    let reasons = df
        .column(crate::g1::REASON)
        .stage(stage)?
        .str()
        .stage(stage)?;
    let rows = df.column("rows").stage(stage)?.u64().stage(stage)?;
    let ns = df.column("n").stage(stage)?.u64().stage(stage)?;
    let mut out = BTreeMap::new();
    for ((r, rows), n) in reasons.iter().zip(rows.iter()).zip(ns.iter()) {
        if let Some(reason) = r.and_then(RowReason::parse) {
            out.insert(
                reason,
                Dropped {
                    rows: rows.unwrap_or(0),
                    interactions: n.unwrap_or(0),
                },
            );
        }
    }
    Ok(out)
}

pub(crate) fn by_code(m: &BTreeMap<RowReason, Dropped>) -> BTreeMap<String, Dropped> {
    m.iter()
        .map(|(r, d)| (r.as_str().to_string(), *d))
        .collect()
}

/// Writes `df` as Parquet to `path` (via a temporary name, so a reader never sees a
/// half-written file).
pub(crate) fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<(), ProcessError> {
    let io = |source| ProcessError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp).map_err(io)?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(df)
        .stage("write parquet")?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

struct Stages(ProgressBar);

impl Stages {
    fn new(show: bool) -> Self {
        if !show {
            return Self(ProgressBar::hidden());
        }
        let bar = ProgressBar::new(6);
        if let Ok(style) = ProgressStyle::with_template("[{elapsed}] {bar:20} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        Self(bar)
    }

    fn next(&self, what: &'static str) {
        self.0.set_message(what);
        self.0.inc(1);
        info!(stage = what, "process");
    }
}

/// Processes a raw G1 directory into the refined data set. Returns the summary that
/// is also written to `summary.json`.
#[tracing::instrument(skip_all, fields(raw = %config.raw.display(), out = %config.out.display()))]
pub fn process(config: &ProcessConfig) -> Result<ProcessSummary, ProcessError> {
    let started = Instant::now();
    let layout = RawLayout::discover(&config.raw)?;
    std::fs::create_dir_all(&config.out).map_err(|source| ProcessError::Io {
        path: config.out.clone(),
        source,
    })?;
    let stages = Stages::new(config.progress);

    let out = &config.out;
    // Each output is written as soon as it is complete and only what later stages need
    // is kept: the article text and the interactions are the largest frames, and
    // holding them all until one final write set the peak memory.
    stages.next("items");
    let it = items::run(&layout.items)?;
    let mut item_df = it.items;
    write_parquet(&mut item_df, &out.join(refined::ITEMS_FILE))?;
    let items_out = item_df.height() as u64;
    let item_pages = item_df.select([c::PAGE]).stage("item pages")?;
    drop(item_df);

    stages.next("training: parse, explode, cap");
    let t = training::run(&layout.training, &config.caps)?;
    let mut interactions = t.interactions;

    stages.next("users: aggregates and tiers");
    let mut users = aggregates::users_with_tiers(interactions.clone().lazy())?;
    let (tiers, user_types) = tier_shares(&users)?;
    let pop = items::popularity(&interactions, &item_pages)?;
    drop(item_pages);
    write_parquet(&mut interactions, &out.join(refined::INTERACTIONS_FILE))?;
    let interactions_out = interactions.height() as u64;
    drop(interactions);

    stages.next("validation");
    let v = validation::run(&layout.validation, &users, t.last_ts)?;
    let mut validation_df = v.validation;

    stages.next("write parquet");
    write_parquet(&mut users, &out.join(refined::USERS_FILE))?;
    write_parquet(&mut validation_df, &out.join(refined::VALIDATION_FILE))?;

    let interactions_malformed = t.malformed.values().map(|d| d.interactions).sum();
    let mut summary = ProcessSummary {
        training_files: layout.training.len(),
        training_rows: t.rows,
        interactions_in: t.interactions_in,
        training_malformed: by_code(&t.malformed),
        interactions_malformed,
        cleaning: t.cleaning,
        interactions_out,
        users_out: users.height() as u64,
        tiers,
        user_types,
        time_range: t.first_ts.zip(t.last_ts),
        item_files: layout.items.len(),
        item_rows: it.rows,
        items_malformed: by_code(&it.malformed),
        items_bad_dates: it.bad_dates,
        items_out,
        clicked_pages_without_item: pop.pages_without_item,
        interactions_without_item: pop.interactions_without_item,
        popularity_gini: pop.gini,
        validation_rows: v.rows,
        validation_in: v.interactions_in,
        validation_malformed: by_code(&v.malformed),
        validation_out: validation_df.height() as u64,
        validation_users_unknown: v.unknown_users,
        validation_before_training_end: v.before_training_end,
        elapsed_ms: 0,
    };

    stages.next("report");
    let data = ReportData {
        history_sizes: t.history_sizes,
        before: t.before,
        after: t.after,
        clicks_per_day: t.clicks_per_day,
        popularity: pop.histogram,
        lorenz: pop.lorenz,
    };
    report::write(out, &summary, &data)?;
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    let path = out.join(refined::SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(&summary).map_err(|e| ProcessError::Io {
        path: path.clone(),
        source: e.into(),
    })?;
    std::fs::write(&path, json).map_err(|source| ProcessError::Io { path, source })?;
    stages.0.finish_and_clear();
    info!(
        interactions = summary.interactions_out,
        users = summary.users_out,
        malformed = summary.interactions_malformed,
        capped = summary.cleaning.capped,
        elapsed_ms = summary.elapsed_ms,
        "processed"
    );
    Ok(summary)
}

type Shares = BTreeMap<String, TierShare>;

fn tier_shares(users: &DataFrame) -> Result<(Shares, Shares), ProcessError> {
    const S: &str = "tier shares";
    let tiers = users.column(c::TIER).stage(S)?.str().stage(S)?;
    let types = users.column(c::USER_TYPE).stage(S)?.str().stage(S)?;
    let n = users.column(c::INTERACTIONS).stage(S)?.i64().stage(S)?;
    let mut by_tier: Shares = Tier::ALL
        .iter()
        .map(|t| (t.as_str().to_string(), TierShare::default()))
        .collect();
    let mut by_type: Shares = [UserType::Logged, UserType::NonLogged]
        .iter()
        .map(|t| (t.as_str().to_string(), TierShare::default()))
        .collect();
    for ((tier, ty), n) in tiers.iter().zip(types.iter()).zip(n.iter()) {
        let n = n.unwrap_or(0).max(0) as u64;
        for (map, key) in [(&mut by_tier, tier), (&mut by_type, ty)] {
            if let Some(key) = key {
                let e = map.entry(key.to_string()).or_default();
                e.users += 1;
                e.interactions += n;
            }
        }
    }
    Ok((by_tier, by_type))
}

/// The tier of each user, by [`route_tier`].
pub(crate) fn tiers_of(user_types: &StringChunked, interactions: &Int64Chunked) -> StringChunked {
    user_types
        .iter()
        .zip(interactions.iter())
        .map(|(ty, n)| {
            let tier = route_tier(ty.and_then(UserType::parse), n.unwrap_or(0).max(0) as u64);
            Some(tier.as_str())
        })
        .collect::<StringChunked>()
        .with_name(c::TIER.into())
}
