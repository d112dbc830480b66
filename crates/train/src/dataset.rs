//! Reading the refined Parquet data set into compact, indexed arrays.
//!
//! Ids are parsed once here; everything downstream works on dense `u32` indices
//! (articles in catalogue order, users in first-seen order).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use newsrec_core::refined::{self, col};
use newsrec_core::{Engagement, PageId, UserAggregates, UserId, UserType};
use polars::prelude::*;
use tracing::warn;

use crate::error::TrainError;

/// One article of the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemRecord {
    /// The article.
    pub page: PageId,
    /// Address.
    pub url: String,
    /// Headline.
    pub title: String,
    /// Text (truncated at read time to what the content model uses).
    pub body: String,
    /// Image caption.
    pub caption: String,
    /// Publication time (epoch ms).
    pub issued: Option<i64>,
    /// Last modification (epoch ms).
    pub modified: Option<i64>,
}

/// One training user.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The user.
    pub id: UserId,
    /// Type of the user's latest interaction.
    pub user_type: UserType,
    /// Aggregates over all their training interactions.
    pub aggregates: UserAggregates,
}

/// Training interactions as parallel columns, in event-time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interactions {
    /// User index.
    pub user: Vec<u32>,
    /// Article index.
    pub item: Vec<u32>,
    /// Event time, epoch ms.
    pub ts: Vec<i64>,
    /// Engagement score ([`Engagement::score`]).
    pub strength: Vec<f32>,
    /// What the reader did on the page (the aggregates of any prefix are rebuilt from
    /// it: the ranker's holdout cuts the data in time).
    pub engagement: Vec<Engagement>,
}

impl ItemRecord {
    /// An article known only by id (clicked, missing from the item files).
    pub fn bare(page: PageId) -> Self {
        Self {
            page,
            url: String::new(),
            title: String::new(),
            body: String::new(),
            caption: String::new(),
            issued: None,
            modified: None,
        }
    }
}

impl Interactions {
    /// Number of interactions.
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }
}

/// The training side of the refined data.
#[derive(Debug, Clone, Default)]
pub struct TrainingData {
    /// Catalogue: every article of the item file, then clicked articles missing from it.
    /// Shared: a time cut of the data (the ranker's holdout) keeps the same catalogue.
    pub items: Arc<Vec<ItemRecord>>,
    /// Article → index into `items`.
    pub pages: Arc<HashMap<PageId, u32>>,
    /// Users in first-seen order.
    pub users: Vec<UserRecord>,
    /// User → index into `users`.
    pub user_index: HashMap<UserId, u32>,
    /// Interactions.
    pub interactions: Interactions,
    /// Rows skipped because an id or the user type did not parse.
    pub skipped_rows: u64,
}

/// One validation interaction.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationRow {
    /// The user.
    pub user: UserId,
    /// Their type in the validation file.
    pub user_type: Option<UserType>,
    /// The article read.
    pub page: PageId,
    /// Event time, epoch ms.
    pub ts: i64,
}

fn read_parquet(path: &Path, columns: &[&str]) -> Result<DataFrame, TrainError> {
    let file = File::open(path).map_err(|e| TrainError::io(path, e))?;
    ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| (*c).to_string()).collect()))
        .finish()
        .map_err(|source| TrainError::Parquet {
            path: path.to_path_buf(),
            source,
        })
}

struct Cols<'a> {
    df: &'a DataFrame,
    path: &'a Path,
}

impl<'a> Cols<'a> {
    fn err(&self, column: &str, e: impl ToString) -> TrainError {
        TrainError::Column {
            path: self.path.to_path_buf(),
            column: column.into(),
            reason: e.to_string(),
        }
    }

    fn str(&self, name: &str) -> Result<&'a StringChunked, TrainError> {
        self.df
            .column(name)
            .and_then(|c| c.str())
            .map_err(|e| self.err(name, e))
    }

    fn i64(&self, name: &str) -> Result<&'a Int64Chunked, TrainError> {
        self.df
            .column(name)
            .and_then(|c| c.i64())
            .map_err(|e| self.err(name, e))
    }

    fn f64(&self, name: &str) -> Result<&'a Float64Chunked, TrainError> {
        self.df
            .column(name)
            .and_then(|c| c.f64())
            .map_err(|e| self.err(name, e))
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// Reads items and interactions from a refined data directory. Bodies are cut to
/// `body_chars` characters while reading so the full text never sits in memory.
pub fn read_training(dir: &Path, body_chars: usize) -> Result<TrainingData, TrainError> {
    let mut data = TrainingData::default();
    read_items(&dir.join(refined::ITEMS_FILE), body_chars, &mut data)?;
    read_interactions(&dir.join(refined::INTERACTIONS_FILE), &mut data)?;
    if data.skipped_rows > 0 {
        warn!(
            rows = data.skipped_rows,
            "skipped training rows with invalid ids or user types"
        );
    }
    Ok(data)
}

fn read_items(path: &Path, body_chars: usize, data: &mut TrainingData) -> Result<(), TrainError> {
    let names = [
        col::PAGE,
        col::URL,
        col::ISSUED,
        col::MODIFIED,
        col::TITLE,
        col::BODY,
        col::CAPTION,
    ];
    let df = read_parquet(path, &names)?;
    let c = Cols { df: &df, path };
    let (page, url, title, body, caption) = (
        c.str(col::PAGE)?,
        c.str(col::URL)?,
        c.str(col::TITLE)?,
        c.str(col::BODY)?,
        c.str(col::CAPTION)?,
    );
    let (issued, modified) = (c.i64(col::ISSUED)?, c.i64(col::MODIFIED)?);
    let items = Arc::make_mut(&mut data.items);
    let pages = Arc::make_mut(&mut data.pages);
    items.reserve(df.height());
    for i in 0..df.height() {
        let Some(p) = page.get(i).and_then(|p| PageId::parse(p).ok()) else {
            data.skipped_rows += 1;
            continue;
        };
        if pages.contains_key(&p) {
            continue;
        }
        pages.insert(p.clone(), items.len() as u32);
        items.push(ItemRecord {
            page: p,
            url: url.get(i).unwrap_or_default().to_owned(),
            title: title.get(i).unwrap_or_default().trim().to_owned(),
            body: truncate(body.get(i).unwrap_or_default(), body_chars),
            caption: caption.get(i).unwrap_or_default().to_owned(),
            issued: issued.get(i),
            modified: modified.get(i),
        });
    }
    Ok(())
}

fn read_interactions(path: &Path, data: &mut TrainingData) -> Result<(), TrainError> {
    let names = [
        col::USER_ID,
        col::USER_TYPE,
        col::PAGE,
        col::TS,
        col::CLICKS,
        col::TIME_ON_PAGE_MS,
        col::SCROLL_PCT,
        col::PAGE_VISITS,
        col::ENGAGEMENT,
    ];
    let mut df = read_parquet(path, &names)?;
    // One chunk per column makes the per-row `get` below a plain index.
    df.rechunk_mut_par();
    let c = Cols { df: &df, path };
    let (user, user_type, page) = (
        c.str(col::USER_ID)?,
        c.str(col::USER_TYPE)?,
        c.str(col::PAGE)?,
    );
    let (ts, clicks, time, visits) = (
        c.i64(col::TS)?,
        c.i64(col::CLICKS)?,
        c.i64(col::TIME_ON_PAGE_MS)?,
        c.i64(col::PAGE_VISITS)?,
    );
    let (scroll, engagement) = (c.f64(col::SCROLL_PCT)?, c.f64(col::ENGAGEMENT)?);
    let n = df.height();
    // Lookups by the borrowed column text: one id parse per distinct user, not per row.
    let mut by_text: HashMap<&str, u32> = HashMap::new();
    let mut page_text: HashMap<&str, u32> = HashMap::new();
    let out = &mut data.interactions;
    out.user.reserve(n);
    out.item.reserve(n);
    out.ts.reserve(n);
    out.strength.reserve(n);
    out.engagement.reserve(n);
    for i in 0..n {
        let (Some(u), Some(p), Some(t)) = (user.get(i), page.get(i), ts.get(i)) else {
            data.skipped_rows += 1;
            continue;
        };
        let Some(ut) = user_type.get(i).and_then(UserType::parse) else {
            data.skipped_rows += 1;
            continue;
        };
        let uidx = match by_text.get(u) {
            Some(&x) => x,
            None => {
                let Ok(id) = UserId::parse(u) else {
                    data.skipped_rows += 1;
                    continue;
                };
                let x = match data.user_index.get(&id) {
                    Some(&x) => x,
                    None => {
                        let x = data.users.len() as u32;
                        data.user_index.insert(id.clone(), x);
                        data.users.push(UserRecord {
                            id,
                            user_type: ut,
                            aggregates: UserAggregates::default(),
                        });
                        x
                    }
                };
                by_text.insert(u, x);
                x
            }
        };
        let iidx = match page_text.get(p) {
            Some(&x) => x,
            None => {
                let Ok(pid) = PageId::parse(p) else {
                    data.skipped_rows += 1;
                    continue;
                };
                let x = match data.pages.get(&pid) {
                    Some(&x) => x,
                    None => {
                        // Clicked but missing from the item files: known by id only.
                        let x = data.items.len() as u32;
                        Arc::make_mut(&mut data.pages).insert(pid.clone(), x);
                        Arc::make_mut(&mut data.items).push(ItemRecord::bare(pid));
                        x
                    }
                };
                page_text.insert(p, x);
                x
            }
        };
        let e = Engagement {
            clicks: clicks.get(i).unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
            time_on_page_ms: time.get(i).unwrap_or(0).max(0) as u64,
            scroll_pct: scroll.get(i).unwrap_or(0.0),
            page_visits: visits.get(i).unwrap_or(1).clamp(0, i64::from(u32::MAX)) as u32,
        };
        let rec = &mut data.users[uidx as usize];
        rec.user_type = ut;
        rec.aggregates.add(&e, t);
        out.user.push(uidx);
        out.item.push(iidx);
        out.ts.push(t);
        out.strength
            .push(engagement.get(i).unwrap_or_else(|| e.score()) as f32);
        out.engagement.push(e);
    }
    if !out.ts.is_sorted() {
        sort_by_time(out);
    }
    Ok(())
}

fn sort_by_time(x: &mut Interactions) {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by_key(|&i| x.ts[i]);
    let take = |v: &[u32]| order.iter().map(|&i| v[i]).collect::<Vec<_>>();
    x.user = take(&x.user);
    x.item = take(&x.item);
    x.ts = order.iter().map(|&i| x.ts[i]).collect();
    x.strength = order.iter().map(|&i| x.strength[i]).collect();
    x.engagement = order.iter().map(|&i| x.engagement[i]).collect();
}

/// Reads the validation interactions; rows with invalid ids are skipped.
pub fn read_validation(dir: &Path) -> Result<Vec<ValidationRow>, TrainError> {
    let path: PathBuf = dir.join(refined::VALIDATION_FILE);
    let df = read_parquet(&path, &[col::USER_ID, col::USER_TYPE, col::PAGE, col::TS])?;
    let c = Cols {
        df: &df,
        path: &path,
    };
    let (user, user_type, page, ts) = (
        c.str(col::USER_ID)?,
        c.str(col::USER_TYPE)?,
        c.str(col::PAGE)?,
        c.i64(col::TS)?,
    );
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let (Some(u), Some(p)) = (
            user.get(i).and_then(|u| UserId::parse(u).ok()),
            page.get(i).and_then(|p| PageId::parse(p).ok()),
        ) else {
            continue;
        };
        out.push(ValidationRow {
            user: u,
            user_type: user_type.get(i).and_then(UserType::parse),
            page: p,
            ts: ts.get(i).unwrap_or(0),
        });
    }
    Ok(out)
}
