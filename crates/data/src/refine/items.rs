//! Item parts → `items.parquet`, and item popularity for the report.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use newsrec_core::refined::col as c;
use polars::prelude::*;

use super::{Dropped, ProcessError, Stage};
use crate::g1::{ID_PATTERN, ITEM_COLUMNS, RowReason, parse_g1_datetime, scan_csv_strings};
use crate::report::Histogram;

const S: &str = "items";

/// What the items stage produced.
pub(super) struct ItemsOutcome {
    /// `items.parquet`.
    pub items: DataFrame,
    /// Item rows read.
    pub rows: u64,
    /// Rows set aside, by reason.
    pub malformed: BTreeMap<RowReason, Dropped>,
    /// Rows kept with a null `issued` or `modified`.
    pub bad_dates: u64,
}

/// Reads every item part. Articles are few (hundreds of thousands), so the checks that
/// need state (duplicates) and the date parsing run in one Rust pass over the columns.
pub(super) fn run(paths: &[PathBuf]) -> Result<ItemsOutcome, ProcessError> {
    let raw = scan_csv_strings(paths, &ITEM_COLUMNS)?
        .with_columns([
            col("page").str().strip_chars(lit(NULL)),
            col("title").str().strip_chars(lit(NULL)),
        ])
        .with_column(
            col("page")
                .str()
                .contains(lit(ID_PATTERN), true)
                .fill_null(lit(false))
                .alias("page_ok"),
        )
        .collect()
        .stage("parse items")?;
    let rows = raw.height() as u64;
    let get = |name: &str| -> Result<StringChunked, ProcessError> {
        Ok(raw.column(name).stage(S)?.str().stage(S)?.clone())
    };
    let (page, url, issued, modified) =
        (get("page")?, get("url")?, get("issued")?, get("modified")?);
    let (title, body, caption) = (get("title")?, get("body")?, get("caption")?);
    let page_ok = raw.column("page_ok").stage(S)?.bool().stage(S)?.clone();

    let mut malformed: BTreeMap<RowReason, Dropped> = BTreeMap::new();
    let mut seen: HashSet<&str> = HashSet::with_capacity(raw.height());
    let mut keep = Vec::with_capacity(raw.height());
    let mut issued_ms = Vec::with_capacity(raw.height());
    let mut modified_ms = Vec::with_capacity(raw.height());
    let mut bad_dates = 0u64;
    for (i, p) in page.iter().enumerate() {
        let reason = match p {
            None => Some(RowReason::MissingField),
            Some(_) if page_ok.get(i) != Some(true) => Some(RowReason::BadPageId),
            Some(p) if !seen.insert(p) => Some(RowReason::DuplicatePage),
            Some(_) => None,
        };
        if let Some(r) = reason {
            malformed.entry(r).or_default().rows += 1;
            keep.push(false);
            continue;
        }
        keep.push(true);
        let is = issued.get(i).and_then(parse_g1_datetime);
        let md = modified.get(i).and_then(parse_g1_datetime);
        if (is.is_none() && issued.get(i).is_some()) || (md.is_none() && modified.get(i).is_some())
        {
            bad_dates += 1;
        }
        issued_ms.push(is);
        modified_ms.push(md);
    }
    let mask = BooleanChunked::from_slice("keep".into(), &keep);
    let items = DataFrame::new_infer_height(vec![
        page.filter(&mask)
            .stage(S)?
            .with_name(c::PAGE.into())
            .into_column(),
        url.filter(&mask)
            .stage(S)?
            .with_name(c::URL.into())
            .into_column(),
        Int64Chunked::from_iter_options(c::ISSUED.into(), issued_ms.into_iter()).into_column(),
        Int64Chunked::from_iter_options(c::MODIFIED.into(), modified_ms.into_iter()).into_column(),
        title
            .filter(&mask)
            .stage(S)?
            .with_name(c::TITLE.into())
            .into_column(),
        body.filter(&mask)
            .stage(S)?
            .with_name(c::BODY.into())
            .into_column(),
        caption
            .filter(&mask)
            .stage(S)?
            .with_name(c::CAPTION.into())
            .into_column(),
    ])
    .stage(S)?;
    Ok(ItemsOutcome {
        items,
        rows,
        malformed,
        bad_dates,
    })
}

/// Item popularity over the refined interactions.
pub(super) struct Popularity {
    /// Distinct clicked pages absent from the item files.
    pub pages_without_item: u64,
    /// Interactions on those pages.
    pub interactions_without_item: u64,
    /// Gini coefficient of clicks per clicked page.
    pub gini: f64,
    /// Clicks per page.
    pub histogram: Histogram,
    /// Lorenz curve: `(share of pages, share of clicks)`, pages from least to most read.
    pub lorenz: Vec<(f64, f64)>,
}

pub(super) fn popularity(
    interactions: &DataFrame,
    items: &DataFrame,
) -> Result<Popularity, ProcessError> {
    let known = items
        .select([c::PAGE])
        .stage(S)?
        .lazy()
        .with_column(lit(true).alias("known"));
    let per_page = interactions
        .clone()
        .lazy()
        .group_by([col(c::PAGE)])
        .agg([len().cast(DataType::UInt64).alias("n")])
        .join(
            known,
            [col(c::PAGE)],
            [col(c::PAGE)],
            JoinArgs::new(JoinType::Left),
        )
        .sort(["n"], SortMultipleOptions::default())
        .collect()
        .stage("item popularity")?;
    let n = per_page.column("n").stage(S)?.u64().stage(S)?;
    let known = per_page.column("known").stage(S)?.bool().stage(S)?;
    let counts: Vec<u64> = n.iter().map(|v| v.unwrap_or(0)).collect();
    let (mut pages_without_item, mut interactions_without_item) = (0, 0);
    for (k, &cnt) in known.iter().zip(&counts) {
        if k.is_none() {
            pages_without_item += 1;
            interactions_without_item += cnt;
        }
    }
    let total: u64 = counts.iter().sum();
    let m = counts.len();
    let gini = if m == 0 || total == 0 {
        0.0
    } else {
        let weighted: f64 = counts
            .iter()
            .enumerate()
            .map(|(i, &x)| (i as f64 + 1.0) * x as f64)
            .sum();
        2.0 * weighted / (m as f64 * total as f64) - (m as f64 + 1.0) / m as f64
    };
    let mut lorenz = vec![(0.0, 0.0)];
    let mut acc = 0u64;
    let step = (m / 200).max(1);
    for (i, &x) in counts.iter().enumerate() {
        acc += x;
        if (i + 1) % step == 0 || i + 1 == m {
            lorenz.push(((i + 1) as f64 / m as f64, acc as f64 / total.max(1) as f64));
        }
    }
    Ok(Popularity {
        pages_without_item,
        interactions_without_item,
        gini,
        histogram: Histogram::log2(counts.iter().map(|&x| x as f64)),
        lorenz,
    })
}
