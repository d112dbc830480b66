//! Training every tier from the refined data into a new model version.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use newsrec_core::time::{DAY_MS, HOUR_MS, decay, rfc3339};
use newsrec_core::{Tier, route_tier};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::{info, info_span};

use crate::als::{self, AlsParams, Csr, Factors};
use crate::cluster::{ClusterParams, Clusterer};
use crate::content::{ContentModel, ContentParams, ItemText};
use crate::dataset::{TrainingData, read_training};
use crate::error::TrainError;
use crate::fingerprint::fingerprint_paths;
use crate::model_set::{Artifacts, CfPart, ClusterPart, Item, ItemLists, ModelSet};
use crate::progress::Progress;
use crate::ranker::{RANKER_FILE, RankerParams, fit_ranker};
use crate::registry::{CANDIDATE_LINK, CURRENT_LINK, DataRange, Manifest, Registry, RowCounts};
use newsrec_core::refined;

/// Every training parameter (stored in the manifest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainParams {
    /// Logged tier, collaborative half.
    pub als: AlsParams,
    /// Logged tier, content half.
    pub content: ContentParams,
    /// Semi-logged tier.
    pub cluster: ClusterParams,
    /// Articles in the serving pool (the bounded set scanned per request).
    pub pool_size: usize,
    /// Articles published this many hours before the data end join the pool even
    /// without clicks (content can serve them; ALS cannot yet).
    pub pool_fresh_hours: f64,
    /// Half-life of click weight in the anonymous prior and the pool ranking, hours.
    pub prior_half_life_hours: f64,
    /// Half-life of click weight in the cluster lists, hours.
    pub cluster_half_life_hours: f64,
    /// Length of each cluster list and of the prior.
    pub list_len: usize,
    /// Length of the popularity lists (baselines and offline live signals).
    pub popular_len: usize,
    /// Window of the offline trend, hours (compared with the day before it).
    pub trending_hours: f64,
    /// Co-visitation: later reads of the same user within this many minutes count.
    pub read_next_gap_minutes: i64,
    /// Co-visitation: how many following reads count.
    pub read_next_span: usize,
    /// Co-visitation list length per article.
    pub read_next_len: usize,
    /// The learned ranker: each tier's mixing fitted on a time holdout.
    pub ranker: RankerParams,
}

impl Default for TrainParams {
    fn default() -> Self {
        Self {
            als: AlsParams::default(),
            content: ContentParams::default(),
            cluster: ClusterParams::default(),
            pool_size: 10_000,
            pool_fresh_hours: 48.0,
            prior_half_life_hours: 12.0,
            cluster_half_life_hours: 24.0,
            list_len: 300,
            popular_len: 300,
            trending_hours: 6.0,
            read_next_gap_minutes: 60,
            read_next_span: 3,
            read_next_len: 30,
            ranker: RankerParams::default(),
        }
    }
}

impl TrainParams {
    fn check(&self) -> Result<(), TrainError> {
        let bad = |m: &str| Err(TrainError::Invalid(m.to_owned()));
        if self.als.factors == 0 || self.als.factors > 512 {
            return bad("als.factors must be in 1..=512");
        }
        if !(self.als.alpha >= 0.0 && self.als.regularization > 0.0) {
            return bad("als.alpha must be ≥ 0 and als.regularization > 0");
        }
        if self.pool_size == 0 || self.list_len == 0 || self.popular_len == 0 {
            return bad("pool_size, list_len and popular_len must be positive");
        }
        if !(self.prior_half_life_hours > 0.0
            && self.cluster_half_life_hours > 0.0
            && self.trending_hours > 0.0)
        {
            return bad("half-lives and the trend window must be positive");
        }
        self.ranker.check()
    }
}

fn hours(h: f64) -> i64 {
    (h * HOUR_MS as f64) as i64
}

fn top(scores: &[f64], n: usize) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = scores
        .iter()
        .enumerate()
        .filter(|(_, s)| **s > 0.0)
        .map(|(i, s)| (i as u32, *s as f32))
        .collect();
    if v.len() > n {
        v.select_nth_unstable_by(n - 1, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
    }
    v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// Trains every tier on the refined data in `data_dir` and installs the result as the
/// new current version of `models_dir`.
pub fn train(
    data_dir: &Path,
    models_dir: &Path,
    params: &TrainParams,
) -> Result<Manifest, TrainError> {
    train_as(data_dir, models_dir, params, CURRENT_LINK)
}

/// Trains like [`train`] but installs the result as the `candidate` version, leaving
/// `current` alone: the publish gate ([`crate::publish`]) decides whether it serves.
pub fn train_candidate(
    data_dir: &Path,
    models_dir: &Path,
    params: &TrainParams,
) -> Result<Manifest, TrainError> {
    train_as(data_dir, models_dir, params, CANDIDATE_LINK)
}

fn train_as(
    data_dir: &Path,
    models_dir: &Path,
    params: &TrainParams,
    link: &str,
) -> Result<Manifest, TrainError> {
    params.check()?;
    let _span = info_span!("train", data = %data_dir.display()).entered();
    let started = Instant::now();
    let registry = Registry::open(models_dir)?;
    let inputs = [refined::ITEMS_FILE, refined::INTERACTIONS_FILE].map(|f| data_dir.join(f));
    let data_fingerprint = fingerprint_paths(&inputs)?;
    let t = Instant::now();
    let data = read_training(data_dir, params.content.body_chars)?;
    let read_ms = t.elapsed().as_millis() as u64;
    info!(
        interactions = data.interactions.len(),
        users = data.users.len(),
        items = data.items.len(),
        ms = read_ms,
        "read training data"
    );
    let (artifacts, rows, mut timings) = build(&data, params)?;
    timings.insert("read".into(), read_ms);
    let version = registry.new_version();
    let staged = registry.stage(&version)?;
    let t = Instant::now();
    let model_bytes = ModelSet::write_artifacts(&staged, &artifacts)?;
    artifacts.ranker.write(&staged.join(RANKER_FILE))?;
    timings.insert("write".into(), t.elapsed().as_millis() as u64);
    timings.insert("total".into(), started.elapsed().as_millis() as u64);
    let first_ts = data
        .interactions
        .ts
        .first()
        .copied()
        .unwrap_or(artifacts.end_ts);
    let manifest = Manifest {
        version,
        format: ModelSet::format(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        data: DataRange {
            first_ts,
            last_ts: artifacts.end_ts,
            first: rfc3339(first_ts),
            last: rfc3339(artifacts.end_ts),
        },
        data_fingerprint,
        params: params.clone(),
        rows: RowCounts {
            model_bytes,
            ..rows
        },
        timings_ms: timings,
        metrics: None,
        evaluated: None,
    };
    let dir = registry.install(&staged, &manifest, link)?;
    info!(version = %manifest.version, dir = %dir.display(), ms = manifest.timings_ms.get("total").copied().unwrap_or(0), "model installed as {link}");
    Ok(manifest)
}

/// Builds every tier's artifacts from loaded data. Returns the artifacts, row counts
/// and per-stage timings.
///
/// The stages, each timed under its name in the manifest: `ranker` (each tier's mixing
/// fitted on a time holdout, which builds the stages below on the data before its cut),
/// `popularity` (catalogue, popularity lists and the serving pool), `content`, `als`, `clusters`, `read_next`;
/// the fill order closes the build.
pub(crate) fn build(
    data: &TrainingData,
    p: &TrainParams,
) -> Result<(Artifacts, RowCounts, BTreeMap<String, u64>), TrainError> {
    let x = &data.interactions;
    if x.is_empty() {
        return Err(TrainError::NoData("no interactions".into()));
    }
    let mut sw = Stopwatch {
        clock: Instant::now(),
        timings: BTreeMap::new(),
    };
    let end = x.ts.iter().copied().max().unwrap_or(0);

    // First, so its holdout copy of the data and models are gone before the real ones.
    let ranker = fit_ranker(data, p)?;
    sw.lap("ranker");

    let items = catalogue(data);
    let popularity = Popularity::count(data, &items, end, p);
    let pool = serving_pool(&items, &popularity, end, p);
    sw.lap("popularity");

    let content = fit_content(data, &pool, p);
    let ms = sw.lap("content");
    info!(vocabulary = content.vocabulary(), ms, "content model built");

    let (cf, cf_users) = fit_cf(data, p);
    let ms = sw.lap("als");
    info!(ms, "ALS fitted");

    let (clusters, semi_users) = fit_clusters(data, &items, end, p)?;
    info!(
        clusters = clusters.sizes.len(),
        users = semi_users,
        "clusters fitted"
    );
    sw.lap("clusters");

    let read_next = co_visitation(data, p);
    sw.lap("read_next");

    let fill = fill_order(&items, &popularity.prior, end);

    let rows = RowCounts {
        interactions: x.len() as u64,
        users: data.users.len() as u64,
        logged_users: cf.users.len() as u64,
        semi_logged_users: semi_users as u64,
        items: items.len() as u64,
        cf_users,
        cf_items: cf.trained.iter().filter(|t| **t).count() as u64,
        pool_items: pool.len() as u64,
        vocabulary: content.vocabulary() as u64,
        clusters: clusters.sizes.len() as u64,
        model_bytes: 0,
    };
    let Popularity {
        prior,
        popular_24h,
        popular_all,
        trending,
        ..
    } = popularity;
    let artifacts = Artifacts {
        format: ModelSet::format(),
        end_ts: end,
        items,
        pool,
        fill,
        content,
        cf,
        clusters,
        prior,
        popular_24h,
        popular_all,
        trending,
        read_next,
        ranker,
    };
    Ok((artifacts, rows, sw.timings))
}

/// Whether `item` was published by `end` (an unknown publication time counts as
/// published): articles from the future never enter a list.
fn published_by(item: &Item, end: i64) -> bool {
    item.published.is_none_or(|t| t <= end)
}

/// The catalogue: every article with its publication time, `issued` or else its first
/// click.
fn catalogue(data: &TrainingData) -> Vec<Item> {
    let x = &data.interactions;
    let mut first_click = vec![i64::MAX; data.items.len()];
    for (&i, &t) in x.item.iter().zip(&x.ts) {
        let f = &mut first_click[i as usize];
        *f = (*f).min(t);
    }
    data.items
        .iter()
        .zip(&first_click)
        .map(|(r, &fc)| Item {
            page: r.page.clone(),
            title: r.title.clone(),
            url: r.url.clone(),
            published: r.issued.or((fc != i64::MAX).then_some(fc)),
        })
        .collect()
}

/// Popularity statistics as of the end of the data, counted in one pass over event
/// time, and the lists ranked from them.
struct Popularity {
    /// Clicks per article decayed by `prior_half_life_hours`.
    decayed: Vec<f64>,
    /// `decayed`, zero for articles published after the end of the data.
    prior_scores: Vec<f64>,
    /// The anonymous prior: top `list_len` of `prior_scores`.
    prior: Vec<(u32, f32)>,
    /// Most clicked in the last day.
    popular_24h: Vec<(u32, f32)>,
    /// Most clicked over the whole data.
    popular_all: Vec<(u32, f32)>,
    /// Fastest rising in the trend window against the day before it.
    trending: Vec<(u32, f32)>,
}

impl Popularity {
    fn count(data: &TrainingData, items: &[Item], end: i64, p: &TrainParams) -> Self {
        let x = &data.interactions;
        let n_items = items.len();
        let (prior_hl, trend_w) = (hours(p.prior_half_life_hours), hours(p.trending_hours));
        let mut all = vec![0f64; n_items];
        let mut last_day = vec![0f64; n_items];
        let mut decayed = vec![0f64; n_items];
        let mut recent = vec![0f64; n_items];
        let mut before = vec![0f64; n_items];
        for (&i, &t) in x.item.iter().zip(&x.ts) {
            let (i, age) = (i as usize, end - t);
            all[i] += 1.0;
            decayed[i] += decay(age, prior_hl);
            if age < DAY_MS {
                last_day[i] += 1.0;
            }
            if age < trend_w {
                recent[i] += 1.0;
            } else if age < trend_w + DAY_MS {
                before[i] += 1.0;
            }
        }
        let expected = trend_w as f64 / DAY_MS as f64;
        let trend: Vec<f64> = recent
            .iter()
            .zip(&before)
            .map(|(&r, &b)| {
                if r > 0.0 {
                    (r * ((r + 1.0) / (b * expected + 1.0)).ln()).max(0.0)
                } else {
                    0.0
                }
            })
            .collect();
        let prior_scores: Vec<f64> = (0..n_items)
            .map(|i| {
                if published_by(&items[i], end) {
                    decayed[i]
                } else {
                    0.0
                }
            })
            .collect();
        Self {
            prior: top(&prior_scores, p.list_len),
            popular_24h: top(&last_day, p.popular_len),
            popular_all: top(&all, p.popular_len),
            trending: top(&trend, p.popular_len),
            decayed,
            prior_scores,
        }
    }
}

/// The serving pool: the most current articles by decayed clicks, plus fresh articles
/// without clicks yet (newest first, at most a quarter of `pool_size`).
fn serving_pool(items: &[Item], pop: &Popularity, end: i64, p: &TrainParams) -> Vec<u32> {
    let mut pool: Vec<u32> = top(&pop.prior_scores, p.pool_size)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    let fresh_from = end - hours(p.pool_fresh_hours);
    let mut fresh: Vec<(u32, i64)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, it)| {
            it.published
                .filter(|&t| t >= fresh_from && t <= end)
                .map(|t| (i as u32, t))
        })
        .filter(|(i, _)| pop.decayed[*i as usize] == 0.0)
        .collect();
    fresh.sort_unstable_by_key(|&(_, t)| std::cmp::Reverse(t));
    pool.extend(fresh.into_iter().take(p.pool_size / 4).map(|(i, _)| i));
    pool
}

/// The content half of the logged tier: TF-IDF over every article, neighbours within
/// the pool.
fn fit_content(data: &TrainingData, pool: &[u32], p: &TrainParams) -> ContentModel {
    let texts: Vec<ItemText<'_>> = data
        .items
        .iter()
        .map(|r| ItemText {
            title: &r.title,
            body: &r.body,
            caption: &r.caption,
        })
        .collect();
    let _s = info_span!("content").entered();
    ContentModel::build(&texts, pool, &p.content)
}

/// Users of the data that `route_tier` sends to `tier`, by index.
fn users_of_tier(data: &TrainingData, tier: Tier) -> Vec<u32> {
    data.users
        .iter()
        .enumerate()
        .filter(|(_, u)| route_tier(Some(u.user_type), u.aggregates.interactions) == tier)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Collaborative filtering on every user's engagement-weighted interactions; the
/// logged users' factors are kept. Returns the part and the number of users with at
/// least one interaction in the matrix.
fn fit_cf(data: &TrainingData, p: &TrainParams) -> (CfPart, u64) {
    let x = &data.interactions;
    let n_items = data.items.len();
    let triplets: Vec<(u32, u32, f32)> = x
        .user
        .iter()
        .zip(&x.item)
        .zip(&x.strength)
        .map(|((&u, &i), &s)| (u, i, s.max(0.0)))
        .collect();
    let matrix = Csr::from_triplets(data.users.len(), triplets);
    let fold_in_strength = if matrix.nnz() > 0 {
        matrix.values.iter().sum::<f32>() / matrix.nnz() as f32
    } else {
        1.0
    };
    let bar = Progress::new("ALS", p.als.iterations as u64);
    let fitted = {
        let _s = info_span!("als", users = matrix.rows(), nnz = matrix.nnz()).entered();
        als::fit(&matrix, n_items, &p.als, &|done| bar.set(done as u64))
    };
    bar.finish();
    let mut trained = vec![false; n_items];
    for &i in &matrix.indices {
        trained[i as usize] = true;
    }
    let logged = users_of_tier(data, Tier::Logged);
    let f = p.als.factors;
    let mut user_factors = Factors {
        dim: f,
        data: Vec::with_capacity(logged.len() * f),
    };
    for &u in &logged {
        user_factors
            .data
            .extend_from_slice(fitted.users.row(u as usize));
    }
    let cf_users = (0..matrix.rows())
        .filter(|&r| matrix.indptr[r + 1] > matrix.indptr[r])
        .count() as u64;
    let cf = CfPart {
        alpha: p.als.alpha,
        gramian: fitted.items.gramian(f64::from(p.als.regularization)),
        items: fitted.items,
        trained,
        users: logged
            .iter()
            .map(|&u| data.users[u as usize].id.clone())
            .collect(),
        user_factors,
        fold_in_strength,
    };
    (cf, cf_users)
}

/// The semi-logged tier: clusters of the semi-logged users' feature vectors and a list
/// per cluster. Returns the part (empty with too few users) and the number of
/// semi-logged users.
fn fit_clusters(
    data: &TrainingData,
    items: &[Item],
    end: i64,
    p: &TrainParams,
) -> Result<(ClusterPart, usize), TrainError> {
    let semi = users_of_tier(data, Tier::SemiLogged);
    let features: Vec<_> = semi
        .iter()
        .map(|&u| data.users[u as usize].aggregates.vector())
        .collect();
    if features.len() < p.cluster.clusters.max(2) {
        return Ok((ClusterPart::default(), semi.len()));
    }
    let clusterer = Clusterer::fit(&features, &p.cluster)?;
    let k = clusterer.clusters();
    let mut cluster_of = vec![u32::MAX; data.users.len()];
    let mut sizes = vec![0u64; k];
    for (&u, fv) in semi.iter().zip(&features) {
        let c = clusterer.place(fv);
        cluster_of[u as usize] = c as u32;
        sizes[c] += 1;
    }
    let lists = cluster_lists(data, items, &cluster_of, k, end, p);
    let part = ClusterPart {
        clusterer,
        lists,
        sizes,
    };
    Ok((part, semi.len()))
}

/// Each cluster's list: its members' clicks decayed by `cluster_half_life_hours`,
/// articles published by `end` only.
fn cluster_lists(
    data: &TrainingData,
    items: &[Item],
    cluster_of: &[u32],
    k: usize,
    end: i64,
    p: &TrainParams,
) -> Vec<Vec<(u32, f32)>> {
    let x = &data.interactions;
    let hl = hours(p.cluster_half_life_hours);
    let mut scores = vec![vec![0f64; items.len()]; k];
    for ((&u, &i), &t) in x.user.iter().zip(&x.item).zip(&x.ts) {
        let c = cluster_of[u as usize];
        if c != u32::MAX && published_by(&items[i as usize], end) {
            scores[c as usize][i as usize] += decay(end - t, hl);
        }
    }
    scores.par_iter().map(|s| top(s, p.list_len)).collect()
}

/// The fallback order: the prior, then every other article published by `end`, newest
/// first.
fn fill_order(items: &[Item], prior: &[(u32, f32)], end: i64) -> Vec<u32> {
    let n_items = items.len();
    let mut in_prior = vec![false; n_items];
    prior.iter().for_each(|&(i, _)| in_prior[i as usize] = true);
    let mut rest: Vec<u32> = (0..n_items as u32)
        .filter(|&i| !in_prior[i as usize] && published_by(&items[i as usize], end))
        .collect();
    rest.sort_by_key(|&i| std::cmp::Reverse(items[i as usize].published.unwrap_or(i64::MIN)));
    prior.iter().map(|&(i, _)| i).chain(rest).collect()
}

/// Per-stage wall time for the manifest.
struct Stopwatch {
    clock: Instant,
    timings: BTreeMap<String, u64>,
}

impl Stopwatch {
    fn lap(&mut self, name: &str) -> u64 {
        let ms = self.clock.elapsed().as_millis() as u64;
        self.timings.insert(name.to_owned(), ms);
        self.clock = Instant::now();
        ms
    }
}

/// "Read next": for each article, what the same readers opened within the next few
/// reads and `read_next_gap_minutes`, weighted by closeness. Pairs are packed into
/// `u64` keys and counted by sorting, which needs a fraction of a hash map's memory at
/// G1 scale.
fn co_visitation(data: &TrainingData, p: &TrainParams) -> ItemLists {
    let x = &data.interactions;
    let n_users = data.users.len();
    let mut start = vec![0usize; n_users + 1];
    for &u in &x.user {
        start[u as usize + 1] += 1;
    }
    for i in 0..n_users {
        start[i + 1] += start[i];
    }
    let mut next = start.clone();
    let mut seq = vec![0usize; x.len()];
    // Interactions are in event-time order, so each user's run is too.
    for (row, &u) in x.user.iter().enumerate() {
        seq[next[u as usize]] = row;
        next[u as usize] += 1;
    }
    let gap = p.read_next_gap_minutes * 60_000;
    let mut pairs: Vec<(u64, f32)> = (0..n_users)
        .into_par_iter()
        .flat_map_iter(|u| {
            let rows = &seq[start[u]..start[u + 1]];
            let mut out = Vec::new();
            for (a, &ra) in rows.iter().enumerate() {
                for (d, &rb) in rows.iter().skip(a + 1).take(p.read_next_span).enumerate() {
                    if x.ts[rb] - x.ts[ra] > gap {
                        break;
                    }
                    let (ia, ib) = (x.item[ra], x.item[rb]);
                    if ia != ib {
                        out.push((
                            (u64::from(ia) << 32) | u64::from(ib),
                            1.0 / (d as f32 + 1.0),
                        ));
                    }
                }
            }
            out
        })
        .collect();
    pairs.par_sort_unstable_by_key(|&(k, _)| k);
    let mut lists: Vec<Vec<(u32, f32)>> = vec![Vec::new(); data.items.len()];
    let mut iter = pairs.into_iter().peekable();
    while let Some((key, mut w)) = iter.next() {
        while let Some(&(k2, w2)) = iter.peek() {
            if k2 != key {
                break;
            }
            w += w2;
            iter.next();
        }
        lists[(key >> 32) as usize].push((key as u32, w));
    }
    lists.par_iter_mut().for_each(|l| {
        l.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        l.truncate(p.read_next_len);
    });
    ItemLists::from_lists(lists)
}

/// Per-user training histories (article indices, newest first, without repeats).
pub(crate) fn histories(data: &TrainingData) -> Vec<Vec<u32>> {
    let mut h: Vec<Vec<u32>> = vec![Vec::new(); data.users.len()];
    for (&u, &i) in data.interactions.user.iter().zip(&data.interactions.item) {
        h[u as usize].push(i);
    }
    h.par_iter_mut().for_each(|v| {
        v.reverse();
        let mut seen = HashMap::with_capacity(v.len());
        v.retain(|i| seen.insert(*i, ()).is_none());
    });
    h
}
