//! The trained model set of one version: what a model directory holds and how it is
//! read back. Serving reads only this (plus the live signals it is given).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use newsrec_core::{PageId, Tier, UserAggregates, UserId};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::als::{Factors, dot, fold_in};
use crate::cluster::Clusterer;
use crate::content::ContentModel;
use crate::error::TrainError;
use crate::ranker::Ranker;
use crate::recommend::{LiveSignals, Reason, Recommended, TopList};
use crate::registry::{MANIFEST_FILE, Manifest};

/// File of the model's arrays inside a version directory.
pub const MODEL_FILE: &str = "model.bin";
/// Bumped whenever [`Artifacts`] changes shape; older files are refused, not misread.
const FORMAT: u32 = 2;

/// Article metadata, as responses show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The article.
    pub page: PageId,
    /// Headline (empty when the article was clicked but missing from the item files).
    pub title: String,
    /// Address of the article.
    pub url: String,
    /// Publication time (epoch ms): `issued`, else the first click seen.
    pub published: Option<i64>,
}

/// Ranked lists per article (co-visitation), as compressed rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ItemLists {
    pub(crate) offsets: Vec<u32>,
    pub(crate) items: Vec<u32>,
    pub(crate) scores: Vec<f32>,
}

impl ItemLists {
    pub(crate) fn from_lists(lists: Vec<Vec<(u32, f32)>>) -> Self {
        let mut me = ItemLists {
            offsets: vec![0],
            ..Default::default()
        };
        for list in lists {
            for (i, s) in list {
                me.items.push(i);
                me.scores.push(s);
            }
            me.offsets.push(me.items.len() as u32);
        }
        me
    }

    pub(crate) fn get(&self, i: u32) -> impl Iterator<Item = (u32, f32)> + '_ {
        let i = i as usize;
        let (a, b) = if i + 1 < self.offsets.len() {
            (self.offsets[i] as usize, self.offsets[i + 1] as usize)
        } else {
            (0, 0)
        };
        self.items[a..b]
            .iter()
            .copied()
            .zip(self.scores[a..b].iter().copied())
    }
}

/// The collaborative half of the logged tier.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CfPart {
    /// Confidence slope used in training (fold-in must use the same).
    pub(crate) alpha: f32,
    /// One row per catalogue article; all zeros for articles without interactions.
    pub(crate) items: Factors,
    /// Whether the article has trained factors.
    pub(crate) trained: Vec<bool>,
    /// `YᵀY + λI` for folding in users.
    pub(crate) gramian: Vec<f64>,
    /// Users with stored factors (the logged users of the training data).
    pub(crate) users: Vec<UserId>,
    /// Their factors, parallel to `users`.
    pub(crate) user_factors: Factors,
    /// Strength given to each live-history page when folding in (the live history has
    /// no per-click engagement): the mean training strength.
    pub(crate) fold_in_strength: f32,
}

/// The semi-logged tier: the clusterer and each cluster's ranked list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct ClusterPart {
    pub(crate) clusterer: Clusterer,
    /// Per cluster: (article, popularity within the cluster × recency), best first.
    pub(crate) lists: Vec<Vec<(u32, f32)>>,
    /// Training users per cluster.
    pub(crate) sizes: Vec<u64>,
}

/// Everything a version directory stores besides the manifest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Artifacts {
    pub(crate) format: u32,
    /// Last event time of the training data: "now" when no watermark is given.
    pub(crate) end_ts: i64,
    pub(crate) items: Vec<Item>,
    /// The bounded serving pool (articles current at the data end) scanned by ALS.
    pub(crate) pool: Vec<u32>,
    /// Every article in fallback order (prior, then newest).
    pub(crate) fill: Vec<u32>,
    pub(crate) content: ContentModel,
    pub(crate) cf: CfPart,
    pub(crate) clusters: ClusterPart,
    /// Anonymous prior: popularity × recency at the data end, best first.
    pub(crate) prior: Vec<(u32, f32)>,
    /// Most clicked in the last 24 h of training.
    pub(crate) popular_24h: Vec<(u32, f32)>,
    /// Most clicked over all training.
    pub(crate) popular_all: Vec<(u32, f32)>,
    /// Rising in the last hours of training compared with the day before.
    pub(crate) trending: Vec<(u32, f32)>,
    /// Co-visitation: what readers of an article read next.
    pub(crate) read_next: ItemLists,
    /// Each tier's mixing weights fitted on the training data's time holdout.
    pub(crate) ranker: Ranker,
}

/// A loaded model version: every tier's model, the catalogue and the offline signals.
/// Immutable and `Sync`: the API shares one behind an `Arc` and swaps it on reload.
#[derive(Debug)]
pub struct ModelSet {
    manifest: Manifest,
    dir: PathBuf,
    a: Artifacts,
    /// Looked up for every live-list entry of every request: a fast unkeyed hasher
    /// (the keys are the model's own catalogue).
    pages: FxHashMap<PageId, u32>,
    users: HashMap<UserId, u32>,
    /// The serving pool's articles that have trained factors, and their factor rows
    /// copied contiguously in the same order: the per-request ALS scan reads one
    /// dense block instead of gathering rows across the catalogue.
    pool_items: Vec<u32>,
    pool_factors: Vec<f32>,
    /// [`ModelSet::memory_bytes`], computed once at load.
    memory: u64,
}

impl ModelSet {
    pub(crate) fn new(manifest: Manifest, dir: PathBuf, a: Artifacts) -> Self {
        let pages = a
            .items
            .iter()
            .enumerate()
            .map(|(i, it)| (it.page.clone(), i as u32))
            .collect();
        let users =
            a.cf.users
                .iter()
                .enumerate()
                .map(|(i, u)| (u.clone(), i as u32))
                .collect();
        let pool_items: Vec<u32> = a
            .pool
            .iter()
            .copied()
            .filter(|&i| a.cf.trained.get(i as usize).copied().unwrap_or(false))
            .collect();
        let pool_factors = pool_items
            .iter()
            .flat_map(|&i| a.cf.items.row(i as usize).iter().copied())
            .collect();
        let mut m = Self {
            manifest,
            dir,
            a,
            pages,
            users,
            pool_items,
            pool_factors,
            memory: 0,
        };
        m.memory = m.heap_estimate();
        m
    }

    /// Loads the model of one version directory (`models/<version>`).
    pub fn load(dir: &Path) -> Result<Self, TrainError> {
        let manifest = Manifest::read(&dir.join(MANIFEST_FILE))?;
        let path = dir.join(MODEL_FILE);
        let bytes = fs::read(&path).map_err(|e| TrainError::io(&path, e))?;
        let a: Artifacts =
            postcard::from_bytes(&bytes).map_err(|e| TrainError::artifact(&path, e.to_string()))?;
        if a.format != FORMAT {
            return Err(TrainError::artifact(
                &path,
                format!("format {} (this build reads {FORMAT})", a.format),
            ));
        }
        Ok(Self::new(manifest, dir.to_path_buf(), a))
    }

    /// Writes the artifacts into `dir` (the manifest is written by the registry).
    pub(crate) fn write_artifacts(dir: &Path, a: &Artifacts) -> Result<u64, TrainError> {
        let path = dir.join(MODEL_FILE);
        let bytes =
            postcard::to_stdvec(a).map_err(|e| TrainError::artifact(&path, e.to_string()))?;
        let file = fs::File::create(&path).map_err(|e| TrainError::io(&path, e))?;
        let mut w = BufWriter::new(file);
        w.write_all(&bytes).map_err(|e| TrainError::io(&path, e))?;
        let file = w
            .into_inner()
            .map_err(|e| TrainError::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| TrainError::io(&path, e))?;
        Ok(bytes.len() as u64)
    }

    pub(crate) fn format() -> u32 {
        FORMAT
    }

    /// Heap bytes this loaded model holds, estimated from its containers' capacities
    /// (ids counted once; hash maps at their bucket count plus one control byte each).
    pub fn memory_bytes(&self) -> u64 {
        self.memory
    }

    fn heap_estimate(&self) -> u64 {
        use crate::heap::{map_bytes, vec_bytes};
        let a = &self.a;
        let id = |s: &str| s.len() + 16;
        let items: usize = vec_bytes(&a.items)
            + a.items
                .iter()
                .map(|it| id(it.page.as_str()) + it.title.capacity() + it.url.capacity())
                .sum::<usize>();
        let lists =
            |l: &ItemLists| vec_bytes(&l.offsets) + vec_bytes(&l.items) + vec_bytes(&l.scores);
        let cf = vec_bytes(&a.cf.items.data)
            + vec_bytes(&a.cf.trained)
            + vec_bytes(&a.cf.gramian)
            + vec_bytes(&a.cf.users)
            + a.cf.users.iter().map(|u| id(u.as_str())).sum::<usize>()
            + vec_bytes(&a.cf.user_factors.data);
        let clusters = a.clusters.clusterer.heap_bytes()
            + vec_bytes(&a.clusters.lists)
            + a.clusters.lists.iter().map(vec_bytes).sum::<usize>()
            + vec_bytes(&a.clusters.sizes);
        let ranked = [&a.prior, &a.popular_24h, &a.popular_all, &a.trending]
            .into_iter()
            .map(vec_bytes)
            .sum::<usize>();
        let total = items
            + vec_bytes(&a.pool)
            + vec_bytes(&a.fill)
            + a.content.heap_bytes()
            + cf
            + clusters
            + ranked
            + lists(&a.read_next)
            + map_bytes(&self.pages)
            + map_bytes(&self.users)
            + vec_bytes(&self.pool_items)
            + vec_bytes(&self.pool_factors);
        total as u64
    }

    /// The manifest of this version.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The version name.
    pub fn version(&self) -> &str {
        &self.manifest.version
    }

    /// The directory this model was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Last event time of the training data (epoch ms).
    pub fn end_ts(&self) -> i64 {
        self.a.end_ts
    }

    /// Number of articles in the catalogue.
    pub fn catalogue_len(&self) -> usize {
        self.a.items.len()
    }

    /// Metadata of an article (title, url, publication time).
    pub fn item(&self, page: &PageId) -> Option<&Item> {
        self.index_of(page).and_then(|i| self.item_at(i))
    }

    /// Articles most similar in content to `page`, best first (at most the number
    /// precomputed per article at training time).
    pub fn similar(&self, page: &PageId, k: usize) -> Vec<Recommended> {
        let Some(i) = self.index_of(page) else {
            return Vec::new();
        };
        self.a
            .content
            .neighbours(i)
            .take(k)
            .filter_map(|(j, s)| {
                self.item_at(j).map(|it| Recommended {
                    page: it.page.clone(),
                    score: f64::from(s),
                    reason: Reason::Content,
                    tier: Tier::Anonymous,
                })
            })
            .collect()
    }

    /// The behaviour cluster a user with these aggregates is placed in.
    pub fn cluster_of(&self, aggregates: &UserAggregates) -> Option<usize> {
        (self.a.clusters.clusterer.clusters() > 0)
            .then(|| self.a.clusters.clusterer.place_user(aggregates))
    }

    /// Whether the logged tier has stored factors for this user (else they are folded
    /// in from their history).
    pub fn knows_user(&self, user: &UserId) -> bool {
        self.users.contains_key(user)
    }

    /// The live signals as of the end of the training data: the evaluation's stand-in
    /// for the feature store, and the API's fallback when the store is unreachable.
    pub fn offline_signals(&self, last_page: Option<&PageId>) -> LiveSignals {
        let to_pages = |list: &[(u32, f32)]| -> TopList {
            list.iter()
                .filter_map(|&(i, s)| self.item_at(i).map(|it| (it.page.clone(), f64::from(s))))
                .collect()
        };
        let read_next = last_page
            .and_then(|p| self.index_of(p))
            .map(|i| {
                self.a
                    .read_next
                    .get(i)
                    .filter_map(|(j, s)| self.item_at(j).map(|it| (it.page.clone(), f64::from(s))))
                    .collect()
            })
            .unwrap_or_default();
        LiveSignals {
            popular: to_pages(&self.a.popular_24h),
            trending: to_pages(&self.a.trending),
            read_next,
            watermark: Some(self.a.end_ts),
        }
    }

    /// Most clicked in the last 24 h of training, best first (a baseline).
    pub fn popular_24h(&self) -> impl Iterator<Item = &PageId> + '_ {
        self.a
            .popular_24h
            .iter()
            .filter_map(|&(i, _)| self.item_at(i).map(|it| &it.page))
    }

    /// Most clicked over all training, best first (a baseline).
    pub fn popular_all(&self) -> impl Iterator<Item = &PageId> + '_ {
        self.a
            .popular_all
            .iter()
            .filter_map(|&(i, _)| self.item_at(i).map(|it| &it.page))
    }

    /// The ranker fitted at train time.
    pub fn ranker(&self) -> &Ranker {
        &self.a.ranker
    }

    pub(crate) fn set_ranker(&mut self, r: Ranker) {
        self.a.ranker = r;
    }

    pub(crate) fn item_at(&self, i: u32) -> Option<&Item> {
        self.a.items.get(i as usize)
    }

    pub(crate) fn index_of(&self, page: &PageId) -> Option<u32> {
        self.pages.get(page).copied()
    }

    pub(crate) fn published_at(&self, i: u32) -> Option<i64> {
        self.item_at(i).and_then(|it| it.published)
    }

    pub(crate) fn content(&self) -> &ContentModel {
        &self.a.content
    }

    pub(crate) fn prior(&self) -> &[(u32, f32)] {
        &self.a.prior
    }

    pub(crate) fn fill_order(&self) -> &[u32] {
        &self.a.fill
    }

    pub(crate) fn cluster_list(&self, aggregates: &UserAggregates) -> Option<&[(u32, f32)]> {
        self.cluster_of(aggregates)
            .and_then(|c| self.a.clusters.lists.get(c))
            .map(Vec::as_slice)
    }

    pub(crate) fn user_factors(&self, user: &UserId) -> Option<&[f32]> {
        self.users
            .get(user)
            .map(|&u| self.a.cf.user_factors.row(u as usize))
    }

    /// Folds a user in from the history pages that have trained factors.
    pub(crate) fn fold_in(&self, history: &[u32]) -> Option<Vec<f32>> {
        let cf = &self.a.cf;
        let read: Vec<(u32, f32)> = history
            .iter()
            .filter(|&&i| cf.trained.get(i as usize).copied().unwrap_or(false))
            .map(|&i| (i, cf.fold_in_strength))
            .collect();
        fold_in(&cf.items, &cf.gramian, cf.alpha, &read)
    }

    pub(crate) fn cf_score(&self, user: &[f32], i: u32) -> Option<f32> {
        let cf = &self.a.cf;
        if !cf.trained.get(i as usize).copied().unwrap_or(false) {
            return None;
        }
        Some(dot(cf.items.row(i as usize), user))
    }

    /// The `n` pool articles with the highest ALS score for `user`: a bounded scan of
    /// the serving pool, never of the whole catalogue.
    pub(crate) fn cf_top(&self, user: &[f32], n: usize) -> Vec<(u32, f32)> {
        let dim = self.a.cf.items.dim;
        if dim == 0 || user.len() != dim {
            return Vec::new();
        }
        if n == 0 {
            return Vec::new();
        }
        // The best `n` so far in a min-heap: most rows fail one comparison with the
        // weakest kept score, with no second pass over thousands of scores.
        let mut best: BinaryHeap<Reverse<Ranked>> = BinaryHeap::with_capacity(n + 1);
        for (&i, row) in self
            .pool_items
            .iter()
            .zip(self.pool_factors.chunks_exact(dim))
        {
            let s = dot(row, user);
            if best.len() < n {
                best.push(Reverse(Ranked(s, i)));
            } else if let Some(mut weakest) = best.peek_mut()
                && s > weakest.0.0
            {
                *weakest = Reverse(Ranked(s, i));
            }
        }
        best.into_iter()
            .map(|Reverse(Ranked(s, i))| (i, s))
            .collect()
    }
}

/// An (ALS score, article) pair ordered by score (total order on floats).
#[derive(Debug, Clone, Copy)]
struct Ranked(f32, u32);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(other.1.cmp(&self.1))
    }
}
