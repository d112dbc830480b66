//! Training parts → cleaned interactions with engagement, sorted by event time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use newsrec_core::refined::col as c;
use newsrec_core::time::DAY_MS;
use newsrec_core::{Engagement, EngagementCaps};
use polars::prelude::*;

use super::{
    Cleaning, Dropped, EngagementP99, ParsedRows, ProcessError, Stage, parse_rows, reason_counts,
};
use crate::g1::{N_IN, REASON, RowReason, TRAINING_COLUMNS, explode_training, training_rows};
use crate::report::{EngagementHists, Histogram};

/// What the training stage produced.
pub(super) struct TrainingOutcome {
    /// Refined interactions (the `interactions.parquet` columns), sorted by `ts`.
    pub interactions: DataFrame,
    /// Training rows read.
    pub rows: u64,
    /// Interactions the rows hold.
    pub interactions_in: u64,
    /// Set aside, by reason.
    pub malformed: BTreeMap<RowReason, Dropped>,
    /// Outlier cleaning.
    pub cleaning: Cleaning,
    /// First refined event.
    pub first_ts: Option<i64>,
    /// Last refined event.
    pub last_ts: Option<i64>,
    /// Interactions per well-formed row.
    pub history_sizes: Histogram,
    /// Engagement columns of well-formed interactions, before cleaning.
    pub before: EngagementHists,
    /// Engagement columns after cleaning.
    pub after: EngagementHists,
    /// Refined interactions per day (`(day start ms, count)`).
    pub clicks_per_day: Vec<(i64, u64)>,
}

const S: &str = "training";

pub(super) fn run(
    paths: &[PathBuf],
    caps: &EngagementCaps,
) -> Result<TrainingOutcome, ProcessError> {
    let ParsedRows {
        rows,
        n_rows,
        interactions_in,
        mut malformed,
    } = parse_rows(
        paths,
        &TRAINING_COLUMNS,
        training_rows,
        "parse training rows",
    )?;
    let history_sizes = Histogram::log2(
        rows.column(N_IN)
            .stage(S)?
            .i64()
            .stage(S)?
            .iter()
            .zip(rows.column(REASON).stage(S)?.str().stage(S)?.iter())
            .filter(|(_, r)| r.is_none())
            .filter_map(|(n, _)| n.map(|n| n as f64)),
    );
    let history_size_p99 = rows
        .clone()
        .lazy()
        .filter(col(REASON).is_null())
        .select([col(N_IN)
            .cast(DataType::Float64)
            .quantile(lit(0.99), QuantileMethod::Linear)])
        .collect()
        .stage(S)
        .and_then(|df| scalar_f64(&df, N_IN))?;

    let exploded = explode_training(rows.lazy())
        .collect()
        .stage("explode training lists")?;
    for (reason, d) in reason_counts(
        exploded.clone().lazy(),
        None,
        "count malformed interactions",
    )? {
        // Interaction-level reasons drop single values, not rows.
        malformed.insert(
            reason,
            Dropped {
                rows: 0,
                interactions: d.rows,
            },
        );
    }
    let valid = exploded
        .lazy()
        .filter(col(REASON).is_null())
        .drop(by_name([REASON], true, false))
        .collect()
        .stage("well-formed interactions")?;
    let before = EngagementHists::of(&valid).stage(S)?;

    let above = [
        (c::CLICKS, col(c::CLICKS).gt(lit(caps.clicks as i64))),
        (
            c::TIME_ON_PAGE_MS,
            col(c::TIME_ON_PAGE_MS).gt(lit(caps.time_on_page_ms as i64)),
        ),
        (c::SCROLL_PCT, col(c::SCROLL_PCT).gt(lit(caps.scroll_pct))),
        (
            c::PAGE_VISITS,
            col(c::PAGE_VISITS).gt(lit(caps.page_visits as i64)),
        ),
    ];
    let any_above = above
        .iter()
        .map(|(_, e)| e.clone())
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let p99 = |name: &str| {
        col(name)
            .cast(DataType::Float64)
            .quantile(lit(0.99), QuantileMethod::Linear)
            .alias(format!("p99_{name}"))
    };
    let mut stats: Vec<Expr> = above
        .iter()
        .map(|(name, e)| e.clone().cast(DataType::UInt64).sum().alias(*name))
        .collect();
    stats.push(
        any_above
            .clone()
            .cast(DataType::UInt64)
            .sum()
            .alias("removed"),
    );
    stats.extend([
        p99(c::CLICKS),
        p99(c::TIME_ON_PAGE_MS),
        p99(c::SCROLL_PCT),
        p99(c::PAGE_VISITS),
    ]);
    let st = valid
        .clone()
        .lazy()
        .select(stats)
        .collect()
        .stage("cleaning stats")?;
    let mut above_cap = BTreeMap::new();
    for (name, _) in &above {
        above_cap.insert(name.to_string(), scalar_u64(&st, name)?);
    }
    let cleaning = Cleaning {
        caps_source: "newsrec_core::EngagementCaps (30 min on page, 100% scroll, clicks and visits near the real p99)".into(),
        caps: *caps,
        data_p99: EngagementP99 {
            clicks: scalar_f64(&st, &format!("p99_{}", c::CLICKS))?,
            time_on_page_ms: scalar_f64(&st, &format!("p99_{}", c::TIME_ON_PAGE_MS))?,
            scroll_pct: scalar_f64(&st, &format!("p99_{}", c::SCROLL_PCT))?,
            page_visits: scalar_f64(&st, &format!("p99_{}", c::PAGE_VISITS))?,
        },
        history_size_p99,
        above_cap,
        removed: scalar_u64(&st, "removed")?,
    };

    let mut kept = valid
        .lazy()
        .filter(any_above.not())
        .collect()
        .stage("drop outliers")?;
    let engagement = engagement_column(&kept).stage("engagement")?;
    kept.with_column(engagement).stage(S)?;
    let interactions = kept
        .lazy()
        .select([
            col(c::USER_ID),
            col(c::USER_TYPE),
            col(c::PAGE),
            col(c::TS),
            col(c::CLICKS),
            col(c::TIME_ON_PAGE_MS),
            col(c::SCROLL_PCT),
            col(c::PAGE_VISITS),
            col(c::ENGAGEMENT),
        ])
        .sort_by_exprs(
            [col(c::TS), col(c::USER_ID), col(c::PAGE)],
            SortMultipleOptions::default().with_multithreaded(true),
        )
        .collect()
        .stage("sort interactions")?;
    let after = EngagementHists::of(&interactions).stage(S)?;
    let ts = interactions.column(c::TS).stage(S)?.i64().stage(S)?;
    let (first_ts, last_ts) = (ts.min(), ts.max());
    let per_day = interactions
        .clone()
        .lazy()
        .group_by([(col(c::TS) / lit(DAY_MS)).alias("day")])
        .agg([len().cast(DataType::UInt64).alias("n")])
        .sort(["day"], SortMultipleOptions::default())
        .collect()
        .stage("clicks per day")?;
    let days = per_day.column("day").stage(S)?.i64().stage(S)?;
    let counts = per_day.column("n").stage(S)?.u64().stage(S)?;
    let clicks_per_day = days
        .iter()
        .zip(counts.iter())
        .filter_map(|(d, n)| Some((d? * DAY_MS, n?)))
        .collect();
    Ok(TrainingOutcome {
        interactions,
        rows: n_rows,
        interactions_in,
        malformed,
        cleaning,
        first_ts,
        last_ts,
        history_sizes,
        before,
        after,
        clicks_per_day,
    })
}

/// [`Engagement::score`] of every row: the one definition, applied column-wise.
fn engagement_column(df: &DataFrame) -> PolarsResult<Column> {
    let clicks = df.column(c::CLICKS)?.i64()?;
    let time = df.column(c::TIME_ON_PAGE_MS)?.i64()?;
    let scroll = df.column(c::SCROLL_PCT)?.f64()?;
    let visits = df.column(c::PAGE_VISITS)?.i64()?;
    let to_u32 = |v: Option<i64>| u32::try_from(v.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
    let scores: Float64Chunked = clicks
        .iter()
        .zip(time.iter())
        .zip(scroll.iter())
        .zip(visits.iter())
        .map(|(((cl, t), s), v)| {
            Some(
                Engagement {
                    clicks: to_u32(cl),
                    time_on_page_ms: t.unwrap_or(0).max(0) as u64,
                    scroll_pct: s.unwrap_or(0.0),
                    page_visits: to_u32(v),
                }
                .score(),
            )
        })
        .collect();
    Ok(scores.with_name(c::ENGAGEMENT.into()).into_column())
}

fn scalar_f64(df: &DataFrame, name: &str) -> Result<f64, ProcessError> {
    Ok(df
        .column(name)
        .stage(S)?
        .cast(&DataType::Float64)
        .stage(S)?
        .f64()
        .stage(S)?
        .get(0)
        .unwrap_or(0.0))
}

fn scalar_u64(df: &DataFrame, name: &str) -> Result<u64, ProcessError> {
    Ok(df
        .column(name)
        .stage(S)?
        .cast(&DataType::UInt64)
        .stage(S)?
        .u64()
        .stage(S)?
        .get(0)
        .unwrap_or(0))
}
