//! Training parts → refined interactions (outlier values capped) with engagement,
//! sorted by event time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use newsrec_core::refined::col as c;
use newsrec_core::time::DAY_MS;
use newsrec_core::{Engagement, EngagementCaps};
use polars::prelude::*;

use super::{Cleaning, Dropped, EngagementP99, ProcessError, Stage, parse_rows, reason_counts};
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
    /// Engagement columns after cleaning (capped).
    pub after: EngagementHists,
    /// Refined interactions per day (`(day start ms, count)`).
    pub clicks_per_day: Vec<(i64, u64)>,
}

const S: &str = "training";

pub(super) fn run(
    paths: &[PathBuf],
    caps: &EngagementCaps,
) -> Result<TrainingOutcome, ProcessError> {
    let parsed = read_parts(paths)?;
    let (history_sizes, history_size_p99) = history_sizes(parsed.sizes)?;
    let before = EngagementHists::of(&parsed.valid).stage(S)?;
    let cleaning = cleaning_stats(&parsed.valid, caps, history_size_p99)?;
    let interactions = cap_and_sort(parsed.valid, caps)?;
    let after = EngagementHists::of(&interactions).stage(S)?;
    let ts = interactions.column(c::TS).stage(S)?.i64().stage(S)?;
    let (first_ts, last_ts) = (ts.min(), ts.max());
    let clicks_per_day = clicks_per_day(&interactions)?;
    Ok(TrainingOutcome {
        interactions,
        rows: parsed.rows,
        interactions_in: parsed.interactions_in,
        malformed: parsed.malformed,
        cleaning,
        first_ts,
        last_ts,
        history_sizes,
        before,
        after,
        clicks_per_day,
    })
}

/// The training parts, parsed and exploded.
struct Parsed {
    /// Training rows read.
    rows: u64,
    /// Interactions the rows hold.
    interactions_in: u64,
    /// Set aside, by reason (rows and single interactions).
    malformed: BTreeMap<RowReason, Dropped>,
    /// Interactions per well-formed row (column `N_IN`).
    sizes: DataFrame,
    /// The well-formed interactions, uncleaned.
    valid: DataFrame,
}

/// Parses and explodes the parts one at a time: the text columns and split lists of a
/// part are the largest frames of the run, so only one part's are ever held; what
/// survives a part is its typed, well-formed interactions and the counts.
fn read_parts(paths: &[PathBuf]) -> Result<Parsed, ProcessError> {
    let mut rows = 0;
    let mut interactions_in = 0;
    let mut malformed: BTreeMap<RowReason, Dropped> = BTreeMap::new();
    let mut sizes: Vec<DataFrame> = Vec::with_capacity(paths.len());
    let mut parts: Vec<DataFrame> = Vec::with_capacity(paths.len());
    for path in paths {
        let part = parse_rows(
            std::slice::from_ref(path),
            &TRAINING_COLUMNS,
            training_rows,
            "parse training rows",
        )?;
        rows += part.n_rows;
        interactions_in += part.interactions_in;
        add_counts(&mut malformed, part.malformed);
        sizes.push(
            part.rows
                .clone()
                .lazy()
                .filter(col(REASON).is_null())
                .select([col(N_IN)])
                .collect()
                .stage(S)?,
        );
        // `rows` moves into the plan and is freed with it.
        let exploded = explode_training(part.rows.lazy())
            .collect()
            .stage("explode training lists")?;
        // Interaction-level reasons drop single values, not rows.
        let bad = reason_counts(
            exploded.clone().lazy(),
            None,
            "count malformed interactions",
        )?
        .into_iter()
        .map(|(reason, d)| {
            (
                reason,
                Dropped {
                    rows: 0,
                    interactions: d.rows,
                },
            )
        });
        add_counts(&mut malformed, bad);
        parts.push(
            exploded
                .lazy()
                .filter(col(REASON).is_null())
                .drop(by_name([REASON], true, false))
                .collect()
                .stage("well-formed interactions")?,
        );
    }
    Ok(Parsed {
        rows,
        interactions_in,
        malformed,
        sizes: concat_frames(sizes)?,
        valid: concat_frames(parts)?,
    })
}

/// The histogram of history sizes (interactions per row) and its 99th percentile.
fn history_sizes(sizes: DataFrame) -> Result<(Histogram, f64), ProcessError> {
    let histogram = Histogram::log2(
        sizes
            .column(N_IN)
            .stage(S)?
            .i64()
            .stage(S)?
            .iter()
            .filter_map(|n| n.map(|n| n as f64)),
    );
    let p99 = sizes
        .lazy()
        .select([col(N_IN)
            .cast(DataType::Float64)
            .quantile(lit(0.99), QuantileMethod::Linear)])
        .collect()
        .stage(S)
        .and_then(|df| scalar_f64(&df, N_IN))?;
    Ok((histogram, p99))
}

/// How many values are above their caps (per column and interactions with any), and
/// the data's own 99th percentiles beside the caps.
fn cleaning_stats(
    valid: &DataFrame,
    caps: &EngagementCaps,
    history_size_p99: f64,
) -> Result<Cleaning, ProcessError> {
    let above = [
        (c::CLICKS, col(c::CLICKS).gt(lit(i64::from(caps.clicks)))),
        (
            c::TIME_ON_PAGE_MS,
            col(c::TIME_ON_PAGE_MS).gt(lit(caps.time_on_page_ms as i64)),
        ),
        (c::SCROLL_PCT, col(c::SCROLL_PCT).gt(lit(caps.scroll_pct))),
        (
            c::PAGE_VISITS,
            col(c::PAGE_VISITS).gt(lit(i64::from(caps.page_visits))),
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
    stats.push(any_above.cast(DataType::UInt64).sum().alias("capped"));
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
    Ok(Cleaning {
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
        capped: scalar_u64(&st, "capped")?,
    })
}

/// The refined interactions: values above their caps clamped, sorted by event time,
/// with the engagement column. A value above its cap is never a reason to drop the
/// interaction: the user did read the page, and both training and the click replay
/// must know.
fn cap_and_sort(valid: DataFrame, caps: &EngagementCaps) -> Result<DataFrame, ProcessError> {
    let clamp = |name: &str, cap: Expr| {
        when(col(name).gt(cap.clone()))
            .then(cap)
            .otherwise(col(name))
            .alias(name)
    };
    let mut interactions = valid
        .lazy()
        .select([
            col(c::USER_ID),
            col(c::USER_TYPE),
            col(c::PAGE),
            col(c::TS),
            clamp(c::CLICKS, lit(i64::from(caps.clicks))),
            clamp(c::TIME_ON_PAGE_MS, lit(caps.time_on_page_ms as i64)),
            clamp(c::SCROLL_PCT, lit(caps.scroll_pct)),
            clamp(c::PAGE_VISITS, lit(i64::from(caps.page_visits))),
        ])
        .sort_by_exprs(
            [col(c::TS), col(c::USER_ID), col(c::PAGE)],
            SortMultipleOptions::default().with_multithreaded(true),
        )
        .collect()
        .stage("cap and sort interactions")?;
    let engagement = engagement_column(&interactions).stage("engagement")?;
    interactions.with_column(engagement).stage(S)?;
    Ok(interactions)
}

/// Refined interactions per day, `(day start ms, count)`, ascending.
fn clicks_per_day(interactions: &DataFrame) -> Result<Vec<(i64, u64)>, ProcessError> {
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
    Ok(days
        .iter()
        .zip(counts.iter())
        .filter_map(|(d, n)| Some((d? * DAY_MS, n?)))
        .collect())
}

/// Adds `more` to `counts`, reason by reason.
fn add_counts(
    counts: &mut BTreeMap<RowReason, Dropped>,
    more: impl IntoIterator<Item = (RowReason, Dropped)>,
) {
    for (reason, d) in more {
        let e = counts.entry(reason).or_default();
        e.rows += d.rows;
        e.interactions += d.interactions;
    }
}

/// The frames one under the other (their chunks are kept, not copied).
fn concat_frames(frames: Vec<DataFrame>) -> Result<DataFrame, ProcessError> {
    let mut frames = frames.into_iter();
    let Some(mut all) = frames.next() else {
        return Err(ProcessError::Polars {
            stage: S,
            source: PolarsError::NoData("no training parts".into()),
        });
    };
    for df in frames {
        all.vstack_mut_owned(df).stage(S)?;
    }
    Ok(all)
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

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "c8aab885-433d-4e46-8066-479f40ba7fb2";
    const USER: &str = "f98d1132f60d4688a6b0a6b8c9c0e3f1f98d1132f60d4688a6b0a6b8c9c0e3f1";

    #[test]
    fn outlier_values_are_capped_and_the_interaction_kept() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("treino_parte1.csv");
        let ts = "1657146417045, 1657146605778";
        std::fs::write(
            &path,
            format!(
                "{}\n{USER},Logged,2,\"{PAGE}, {PAGE}\",\"{ts}\",\"14562, 3\",\"46000000, 20000\",\"526275.0, 50.5\",\"2, 654\",\"{ts}\"\n",
                TRAINING_COLUMNS.join(",")
            ),
        )?;
        let caps = EngagementCaps::default();
        let t = run(&[path], &caps)?;
        assert_eq!(t.interactions.height(), 2);
        assert_eq!(t.cleaning.capped, 2);
        for (name, n) in [
            (c::CLICKS, 1),
            (c::TIME_ON_PAGE_MS, 1),
            (c::SCROLL_PCT, 1),
            (c::PAGE_VISITS, 1),
        ] {
            assert_eq!(t.cleaning.above_cap.get(name), Some(&n), "{name}");
        }
        let ints = |name: &str| -> Result<Vec<Option<i64>>, PolarsError> {
            Ok(t.interactions.column(name)?.i64()?.iter().collect())
        };
        assert_eq!(ints(c::CLICKS)?, [Some(i64::from(caps.clicks)), Some(3)]);
        assert_eq!(
            ints(c::TIME_ON_PAGE_MS)?,
            [Some(caps.time_on_page_ms as i64), Some(20_000)]
        );
        assert_eq!(
            ints(c::PAGE_VISITS)?,
            [Some(2), Some(i64::from(caps.page_visits))]
        );
        let scroll: Vec<Option<f64>> = t
            .interactions
            .column(c::SCROLL_PCT)?
            .f64()?
            .iter()
            .collect();
        assert_eq!(scroll, [Some(caps.scroll_pct), Some(50.5)]);
        // The histogram before cleaning still shows the raw outliers.
        assert!(t.before.clicks.counts.len() > t.after.clicks.counts.len());
        Ok(())
    }
}
