//! Reading the refined data back as the stream's inputs: interactions and validation
//! clicks as click events (in event-time order, with the replay's deterministic event
//! ids) and publication times for the feature store's item recency.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use newsrec_core::refined::{INTERACTIONS_FILE, ITEMS_FILE, VALIDATION_FILE, col};
use newsrec_core::{ClickEvent, EventId, PageId, UserId, UserType};
use polars::prelude::*;
use tracing::warn;

/// A refined file that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading {path}: {source}")]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    pub source: PolarsError,
}

fn read_err(path: &Path) -> impl Fn(PolarsError) -> ReadError + '_ {
    move |source| ReadError {
        path: path.to_owned(),
        source,
    }
}

/// Reads `interactions.parquet` into click events, sorted by event time (stable, so the
/// file's order breaks ties), with replay event ids. Returns the events and the number
/// of rows skipped.
pub fn load_events(
    data_dir: &Path,
    limit: Option<usize>,
) -> Result<(Vec<ClickEvent>, u64), ReadError> {
    let path = data_dir.join(INTERACTIONS_FILE);
    let err = read_err(&path);
    let file = std::fs::File::open(&path).map_err(|e| err(PolarsError::from(e)))?;
    let cols = [
        col::USER_ID,
        col::USER_TYPE,
        col::PAGE,
        col::TS,
        col::CLICKS,
        col::TIME_ON_PAGE_MS,
        col::SCROLL_PCT,
        col::PAGE_VISITS,
    ];
    let mut df = ParquetReader::new(file)
        .with_columns(Some(cols.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(&err)?;
    if let Some(n) = limit {
        // The file is sorted by ts; sort anyway so a limit always takes the earliest.
        df = df
            .sort(
                [col::TS],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .map_err(&err)?
            .head(Some(n));
    }
    let int = |name: &str| -> Result<Column, ReadError> {
        df.column(name)
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(&err)
    };
    let users = df
        .column(col::USER_ID)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let types = df
        .column(col::USER_TYPE)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let pages = df
        .column(col::PAGE)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let (ts, clicks, top, visits) = (
        int(col::TS)?,
        int(col::CLICKS)?,
        int(col::TIME_ON_PAGE_MS)?,
        int(col::PAGE_VISITS)?,
    );
    let scroll = df
        .column(col::SCROLL_PCT)
        .and_then(|c| c.cast(&DataType::Float64))
        .map_err(&err)?;
    let (ts, clicks, top, visits, scroll) = (
        ts.i64().map_err(&err)?,
        clicks.i64().map_err(&err)?,
        top.i64().map_err(&err)?,
        visits.i64().map_err(&err)?,
        scroll.f64().map_err(&err)?,
    );

    let mut rows: Vec<(i64, usize)> = ts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.map(|t| (t, i)))
        .collect();
    rows.sort_by_key(|r| *r);
    let mut seen: HashMap<UserId, u64> = HashMap::new();
    let mut events = Vec::with_capacity(rows.len());
    let mut skipped = 0u64;
    for (t, i) in rows {
        let (Some(u), Some(ty), Some(p)) = (users.get(i), types.get(i), pages.get(i)) else {
            skipped += 1;
            continue;
        };
        let (Ok(user), Some(user_type), Ok(page)) =
            (UserId::parse(u), UserType::parse(ty), PageId::parse(p))
        else {
            skipped += 1;
            continue;
        };
        let n = seen.entry(user.clone()).or_default();
        let event_id = EventId::replayed(&user, *n);
        *n += 1;
        events.push(ClickEvent {
            event_id,
            user_id: user,
            user_type,
            page,
            ts: t,
            session_id: None,
            clicks: clicks
                .get(i)
                .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32),
            time_on_page_ms: top.get(i).map(|v| v.max(0) as u64),
            scroll_pct: scroll.get(i).filter(|s| s.is_finite() && *s >= 0.0),
            page_visits: visits
                .get(i)
                .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32),
            rec_id: None,
        });
    }
    if skipped > 0 {
        warn!(skipped, "rows with unparseable ids skipped");
    }
    Ok((events, skipped))
}

/// Reads `validation.parquet` (the days after training) into click events, sorted by
/// event time (stable), with validation event ids ([`EventId::replayed_validation`],
/// apart from the training interactions'). A user without a known type is
/// `Non-Logged`; validation rows carry no engagement. Returns the first `limit` events
/// (all when `None`) and the number of rows skipped.
pub fn load_validation_events(
    data_dir: &Path,
    limit: Option<usize>,
) -> Result<(Vec<ClickEvent>, u64), ReadError> {
    let path = data_dir.join(VALIDATION_FILE);
    let err = read_err(&path);
    let file = std::fs::File::open(&path).map_err(|e| err(PolarsError::from(e)))?;
    let cols = [col::USER_ID, col::USER_TYPE, col::PAGE, col::TS];
    let df = ParquetReader::new(file)
        .with_columns(Some(cols.iter().map(|c| c.to_string()).collect()))
        .finish()
        .map_err(&err)?;
    let text = |name: &str| df.column(name).and_then(|c| c.str().cloned()).map_err(&err);
    let (users, types, pages) = (text(col::USER_ID)?, text(col::USER_TYPE)?, text(col::PAGE)?);
    let ts = df
        .column(col::TS)
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(&err)?;
    let ts = ts.i64().map_err(&err)?;
    let mut rows: Vec<(i64, usize)> = ts
        .iter()
        .enumerate()
        .filter_map(|(i, t)| t.map(|t| (t, i)))
        .collect();
    rows.sort_by_key(|r| *r);
    rows.truncate(limit.unwrap_or(usize::MAX));
    let mut seen: HashMap<UserId, u64> = HashMap::new();
    let mut events = Vec::with_capacity(rows.len());
    let mut skipped = 0u64;
    for (t, i) in rows {
        let parsed = users
            .get(i)
            .and_then(|u| UserId::parse(u).ok())
            .zip(pages.get(i).and_then(|p| PageId::parse(p).ok()));
        let Some((user, page)) = parsed else {
            skipped += 1;
            continue;
        };
        let n = seen.entry(user.clone()).or_default();
        let event_id = EventId::replayed_validation(&user, *n);
        *n += 1;
        events.push(ClickEvent {
            event_id,
            user_type: types
                .get(i)
                .and_then(UserType::parse)
                .unwrap_or(UserType::NonLogged),
            user_id: user,
            page,
            ts: t,
            session_id: None,
            clicks: None,
            time_on_page_ms: None,
            scroll_pct: None,
            page_visits: None,
            rec_id: None,
        });
    }
    if skipped > 0 {
        warn!(skipped, "validation rows with unparseable ids skipped");
    }
    Ok((events, skipped))
}

/// Publication times from `items.parquet` (pages without one are left out), for the
/// feature store's item recency.
pub fn load_issued(data_dir: &Path) -> Result<Vec<(PageId, i64)>, ReadError> {
    let path = data_dir.join(ITEMS_FILE);
    let err = read_err(&path);
    let file = std::fs::File::open(&path).map_err(|e| err(PolarsError::from(e)))?;
    let df = ParquetReader::new(file)
        .with_columns(Some(vec![col::PAGE.to_string(), col::ISSUED.to_string()]))
        .finish()
        .map_err(&err)?;
    let pages = df
        .column(col::PAGE)
        .and_then(|c| c.str().cloned())
        .map_err(&err)?;
    let issued = df
        .column(col::ISSUED)
        .and_then(|c| c.cast(&DataType::Int64))
        .map_err(&err)?;
    let issued = issued.i64().map_err(&err)?;
    Ok(pages
        .iter()
        .zip(issued.iter())
        .filter_map(|(p, t)| Some((PageId::parse(p?).ok()?, t?)))
        .collect())
}
