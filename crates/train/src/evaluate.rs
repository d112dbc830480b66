//! Offline evaluation on every validation user, through the same recommend path the
//! API serves ([`ModelSet::recommend`] with [`ModelSet::offline_signals`]), beside two
//! popularity baselines.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;

use newsrec_core::{PageId, Tier, UserAggregates, refined};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::info_span;

use crate::dataset::{TrainingData, ValidationRow, read_training, read_validation};
use crate::error::TrainError;
use crate::fingerprint::fingerprint_paths;
use crate::fit::histories;
use crate::model_set::ModelSet;
use crate::recommend::{MixWeights, Ranking, UserContext};
use crate::registry::{EvaluationRecord, Registry};

/// The `[evaluate]` table: how the offline evaluation (`evaluate`, `pipeline`) cuts
/// its rankings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateSettings {
    /// Cut-off of every ranking metric (Recall@K, NDCG@K, …).
    pub k: usize,
}

impl Default for EvaluateSettings {
    fn default() -> Self {
        Self { k: 10 }
    }
}

/// Ranking metrics of one group of users (means over users; coverage and novelty over
/// the group's recommendations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Users evaluated.
    pub users: u64,
    /// Recall@K: share of a user's relevant articles recommended.
    pub recall: f64,
    /// NDCG@K with binary relevance.
    pub ndcg: f64,
    /// Hit rate@K: share of users with at least one relevant article recommended.
    pub hr: f64,
    /// MRR@K: reciprocal rank of the first relevant article (0 without one).
    pub mrr: f64,
    /// Distinct articles recommended / catalogue size.
    pub coverage: f64,
    /// Mean self-information `−log2 p(article)` of recommended articles, `p` being the
    /// share of training users who read it: higher is less obvious.
    pub novelty: f64,
}

/// Metrics per tier (users grouped by [`UserContext::tier`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TierMetrics {
    /// Logged tier.
    pub logged: Metrics,
    /// Semi-logged tier.
    pub semi_logged: Metrics,
    /// Anonymous tier.
    pub anonymous: Metrics,
}

impl TierMetrics {
    /// The metrics of one tier.
    pub fn get(&self, t: Tier) -> &Metrics {
        match t {
            Tier::Logged => &self.logged,
            Tier::SemiLogged => &self.semi_logged,
            Tier::Anonymous => &self.anonymous,
        }
    }

    fn get_mut(&mut self, t: Tier) -> &mut Metrics {
        match t {
            Tier::Logged => &mut self.logged,
            Tier::SemiLogged => &mut self.semi_logged,
            Tier::Anonymous => &mut self.anonymous,
        }
    }
}

/// One system's metrics, overall and per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemMetrics {
    /// Every evaluated user.
    pub overall: Metrics,
    /// Per tier.
    pub tiers: TierMetrics,
}

/// The baselines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Baselines {
    /// Most clicked in the last 24 h of training.
    pub popular_24h: SystemMetrics,
    /// Most clicked over all training.
    pub popular_all: SystemMetrics,
}

/// The result of one evaluation run: exactly the `--json` output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    /// Cut-off.
    pub k: usize,
    /// The models, overall.
    pub overall: Metrics,
    /// The models, per tier.
    pub tiers: TierMetrics,
    /// The baselines.
    pub baselines: Baselines,
}

/// Metrics of one user's list against their relevant set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UserScore {
    /// Recall@K.
    pub recall: f64,
    /// NDCG@K.
    pub ndcg: f64,
    /// Hit (0 or 1).
    pub hr: f64,
    /// Reciprocal rank of the first hit.
    pub mrr: f64,
}

/// Scores a ranked list (already cut to K) against the relevant set.
pub fn score_list(list: &[&PageId], relevant: &HashSet<&PageId>, k: usize) -> UserScore {
    if relevant.is_empty() || k == 0 {
        return UserScore::default();
    }
    let mut s = UserScore::default();
    let mut hits = 0usize;
    for (pos, p) in list.iter().take(k).enumerate() {
        if relevant.contains(p) {
            hits += 1;
            s.ndcg += 1.0 / (pos as f64 + 2.0).log2();
            if s.mrr == 0.0 {
                s.mrr = 1.0 / (pos as f64 + 1.0);
            }
        }
    }
    let ideal: f64 = (0..relevant.len().min(k))
        .map(|i| 1.0 / (i as f64 + 2.0).log2())
        .sum();
    s.ndcg /= ideal;
    s.recall = hits as f64 / relevant.len() as f64;
    s.hr = if hits > 0 { 1.0 } else { 0.0 };
    s
}

/// Sums for one group, merged across threads.
#[derive(Debug, Clone, Default)]
struct Acc {
    users: u64,
    sum: UserScore,
    novelty: f64,
    recommended: u64,
    distinct: HashSet<PageId>,
}

impl Acc {
    fn add(&mut self, list: &[&PageId], s: UserScore, info: &impl Fn(&PageId) -> f64) {
        self.users += 1;
        self.sum.recall += s.recall;
        self.sum.ndcg += s.ndcg;
        self.sum.hr += s.hr;
        self.sum.mrr += s.mrr;
        for p in list {
            self.novelty += info(p);
            self.recommended += 1;
            if !self.distinct.contains(*p) {
                self.distinct.insert((*p).clone());
            }
        }
    }

    fn merge(&mut self, o: Acc) {
        self.users += o.users;
        self.sum.recall += o.sum.recall;
        self.sum.ndcg += o.sum.ndcg;
        self.sum.hr += o.sum.hr;
        self.sum.mrr += o.sum.mrr;
        self.novelty += o.novelty;
        self.recommended += o.recommended;
        self.distinct.extend(o.distinct);
    }

    fn metrics(&self, catalogue: usize) -> Metrics {
        let n = self.users.max(1) as f64;
        Metrics {
            users: self.users,
            recall: self.sum.recall / n,
            ndcg: self.sum.ndcg / n,
            hr: self.sum.hr / n,
            mrr: self.sum.mrr / n,
            coverage: self.distinct.len() as f64 / catalogue.max(1) as f64,
            novelty: self.novelty / self.recommended.max(1) as f64,
        }
    }
}

/// Per system (model, popular 24 h, popular all), per tier (+ overall at index 3).
#[derive(Debug, Clone, Default)]
struct Accs([[Acc; 4]; 3]);

impl Accs {
    fn merge(mut self, o: Accs) -> Accs {
        for (a, b) in self.0.iter_mut().zip(o.0) {
            for (x, y) in a.iter_mut().zip(b) {
                x.merge(y);
            }
        }
        self
    }
}

fn tier_slot(t: Tier) -> usize {
    match t {
        Tier::Logged => 0,
        Tier::SemiLogged => 1,
        Tier::Anonymous => 2,
    }
}

/// One validation user, prepared once and evaluated under any weights.
#[derive(Debug, Clone)]
pub struct EvalUser {
    /// What the API would know about the user at the start of the validation period.
    pub ctx: UserContext,
    /// Distinct validation articles the user had not read in training.
    pub relevant: Vec<PageId>,
}

/// The validation users of a data set, ready to be evaluated against models.
#[derive(Debug, Clone)]
pub struct Evaluator {
    users: Vec<EvalUser>,
    /// Validation users left out because they only re-read training articles.
    pub rereads_only: u64,
    /// −log2 p(article) by page, from training readership.
    info: HashMap<PageId, f64>,
    /// Self-information of an article no training user read.
    unseen_info: f64,
}

impl Evaluator {
    /// Reads training and validation data from a refined data directory.
    pub fn from_dir(dir: &Path) -> Result<Self, TrainError> {
        let data = read_training(dir, 0)?;
        let validation = read_validation(dir)?;
        Ok(Self::new(&data, &validation))
    }

    /// Prepares every validation user: their training history (newest first), their
    /// training aggregates and type, and their relevant articles.
    pub fn new(data: &TrainingData, validation: &[ValidationRow]) -> Self {
        let hist = histories(data);
        let mut readers = vec![0u64; data.items.len()];
        for h in &hist {
            for &i in h {
                readers[i as usize] += 1;
            }
        }
        let n_users = data.users.len() as f64;
        let info = data
            .items
            .iter()
            .zip(&readers)
            .map(|(it, &r)| {
                (
                    it.page.clone(),
                    -((r as f64 + 1.0) / (n_users + 1.0)).log2(),
                )
            })
            .collect();
        let mut by_user: HashMap<
            &newsrec_core::UserId,
            (Option<newsrec_core::UserType>, Vec<&PageId>),
        > = HashMap::new();
        for row in validation {
            let e = by_user
                .entry(&row.user)
                .or_insert((row.user_type, Vec::new()));
            if !e.1.contains(&&row.page) {
                e.1.push(&row.page);
            }
        }
        let mut users = Vec::with_capacity(by_user.len());
        let mut rereads_only = 0;
        let mut ids: Vec<_> = by_user.into_iter().collect();
        ids.sort_by(|a, b| a.0.cmp(b.0));
        for (id, (vtype, pages)) in ids {
            let known = data.user_index.get(id).copied();
            let history: Vec<PageId> = known
                .map(|u| {
                    hist[u as usize]
                        .iter()
                        .map(|&i| data.items[i as usize].page.clone())
                        .collect()
                })
                .unwrap_or_default();
            let read: HashSet<&PageId> = history.iter().collect();
            let relevant: Vec<PageId> = pages
                .into_iter()
                .filter(|p| !read.contains(p))
                .cloned()
                .collect();
            if relevant.is_empty() {
                rereads_only += 1;
                continue;
            }
            let (user_type, aggregates) = match known {
                Some(u) => (
                    Some(data.users[u as usize].user_type),
                    data.users[u as usize].aggregates,
                ),
                None => (vtype, UserAggregates::default()),
            };
            users.push(EvalUser {
                ctx: UserContext {
                    user_id: Some(id.clone()),
                    user_type,
                    aggregates,
                    last_page: history.first().cloned(),
                    // The whole training history: every page of it is excluded.
                    history,
                    read: Default::default(),
                },
                relevant,
            });
        }
        Self {
            users,
            rereads_only,
            info,
            unseen_info: (n_users + 1.0).log2(),
        }
    }

    /// The prepared users.
    pub fn users(&self) -> &[EvalUser] {
        &self.users
    }

    /// Evaluates `model` (and the baselines) at cut-off `k` with mixing weights `w`.
    pub fn run(&self, model: &ModelSet, k: usize, w: &MixWeights) -> EvaluationReport {
        let _span = info_span!("evaluate", users = self.users.len(), k).entered();
        let info = |p: &PageId| self.info.get(p).copied().unwrap_or(self.unseen_info);
        let pop24: Vec<&PageId> = model.popular_24h().collect();
        let pop_all: Vec<&PageId> = model.popular_all().collect();
        let baseline = |list: &[&'_ PageId], read: &HashSet<&PageId>| -> Vec<PageId> {
            list.iter()
                .filter(|p| !read.contains(*p))
                .take(k)
                .map(|p| (*p).clone())
                .collect()
        };
        let accs = self
            .users
            .par_iter()
            .fold(Accs::default, |mut accs, u| {
                let tier = u.ctx.tier();
                let signals = model.offline_signals(u.ctx.last_page.as_ref());
                let recs = model.recommend(&u.ctx, &signals, k, w);
                let relevant: HashSet<&PageId> = u.relevant.iter().collect();
                let read: HashSet<&PageId> = u.ctx.history.iter().collect();
                let lists = [
                    recs.items
                        .iter()
                        .map(|r| r.page.clone())
                        .collect::<Vec<_>>(),
                    baseline(&pop24, &read),
                    baseline(&pop_all, &read),
                ];
                for (system, list) in lists.iter().enumerate() {
                    let refs: Vec<&PageId> = list.iter().collect();
                    let s = score_list(&refs, &relevant, k);
                    accs.0[system][tier_slot(tier)].add(&refs, s, &info);
                    accs.0[system][3].add(&refs, s, &info);
                }
                accs
            })
            .reduce(Accs::default, Accs::merge);
        let n = model.catalogue_len();
        let system = |s: usize| {
            let mut m = SystemMetrics {
                overall: accs.0[s][3].metrics(n),
                ..Default::default()
            };
            for t in Tier::ALL {
                *m.tiers.get_mut(t) = accs.0[s][tier_slot(t)].metrics(n);
            }
            m
        };
        let (model_m, pop24_m, pop_all_m) = (system(0), system(1), system(2));
        EvaluationReport {
            k,
            overall: model_m.overall,
            tiers: model_m.tiers,
            baselines: Baselines {
                popular_24h: pop24_m,
                popular_all: pop_all_m,
            },
        }
    }
}

/// Evaluates the current model of `models_dir` on the data in `data_dir`, appends the
/// run to the evaluation history and stores the metrics in the model's manifest.
pub fn evaluate(
    data_dir: &Path,
    models_dir: &Path,
    k: usize,
    w: &MixWeights,
) -> Result<(EvaluationRecord, u64), TrainError> {
    let registry = Registry::open(models_dir)?;
    let version = registry
        .current_version()?
        .ok_or_else(|| TrainError::NoModel(models_dir.to_path_buf()))?;
    evaluate_version(data_dir, models_dir, &version, k, w)
}

/// Evaluates one version of `models_dir` (current or not, e.g. the candidate) like
/// [`evaluate`]: the record goes to the history and the version's manifest.
pub fn evaluate_version(
    data_dir: &Path,
    models_dir: &Path,
    version: &str,
    k: usize,
    w: &MixWeights,
) -> Result<(EvaluationRecord, u64), TrainError> {
    let (record, rereads, _) = evaluate_version_with(data_dir, models_dir, version, k, w, &[])?;
    Ok((record, rereads))
}

/// The rankings `evaluate --ablation` compares: the learned one, then
/// [`MixWeights::hand_variants`] of `w`.
pub fn ablation_variants(w: &MixWeights) -> Vec<(&'static str, MixWeights)> {
    let learned = MixWeights {
        ranking: Ranking::Learned,
        ..w.clone()
    };
    std::iter::once(("learned", learned))
        .chain(w.hand_variants())
        .collect()
}

/// Reports of named variants of the mixing, in order.
pub type NamedReports = Vec<(&'static str, EvaluationReport)>;

/// [`evaluate_version`], and each of `variants` on the same data and model (not
/// recorded); a variant with `w`'s own weights reuses the recorded report.
pub fn evaluate_version_with(
    data_dir: &Path,
    models_dir: &Path,
    version: &str,
    k: usize,
    w: &MixWeights,
    variants: &[(&'static str, MixWeights)],
) -> Result<(EvaluationRecord, u64, NamedReports), TrainError> {
    let registry = Registry::open(models_dir)?;
    let model = registry.load(version)?;
    let validation = evaluation_data_fingerprint(data_dir)?;
    let evaluator = Evaluator::from_dir(data_dir)?;
    let report = evaluator.run(&model, k, w);
    let record = EvaluationRecord {
        version: model.version().to_owned(),
        evaluated: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        report,
        validation: Some(validation),
    };
    registry.record_evaluation(&record)?;
    let others = variants
        .iter()
        .map(|(name, v)| {
            let r = if v == w {
                record.report
            } else {
                evaluator.run(&model, k, v)
            };
            (*name, r)
        })
        .collect();
    Ok((record, evaluator.rereads_only, others))
}

/// Content fingerprint of what an evaluation reads in `data_dir` (the training files,
/// which give each user's history, and the validation file): two evaluations are
/// comparable when it is the same.
pub fn evaluation_data_fingerprint(data_dir: &Path) -> Result<String, TrainError> {
    fingerprint_paths(&[
        data_dir.join(refined::ITEMS_FILE),
        data_dir.join(refined::INTERACTIONS_FILE),
        data_dir.join(refined::VALIDATION_FILE),
    ])
}

impl EvaluationReport {
    /// A plain-text table: the models beside both baselines, overall and per tier.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<12} {:<12} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8}",
            "group", "system", "users", "recall", "ndcg", "hr", "mrr", "coverage", "novelty"
        );
        let groups: [(&str, Option<Tier>); 4] = [
            ("overall", None),
            ("logged", Some(Tier::Logged)),
            ("semi_logged", Some(Tier::SemiLogged)),
            ("anonymous", Some(Tier::Anonymous)),
        ];
        let models = SystemMetrics {
            overall: self.overall,
            tiers: self.tiers,
        };
        for (name, tier) in groups {
            for (sys, m) in [
                ("model", &models),
                ("popular_24h", &self.baselines.popular_24h),
                ("popular_all", &self.baselines.popular_all),
            ] {
                let m = tier.map_or(m.overall, |t| *m.tiers.get(t));
                let _ = writeln!(
                    out,
                    "{:<12} {:<12} {:>8} {:>8.4} {:>8.4} {:>8.4} {:>8.4} {:>9.5} {:>8.2}",
                    name, sys, m.users, m.recall, m.ndcg, m.hr, m.mrr, m.coverage, m.novelty
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(n: usize) -> Vec<PageId> {
        (0..n)
            .map(|i| PageId::parse(&format!("p{i}")).expect("page"))
            .collect()
    }

    #[test]
    fn metrics_match_hand_computed_cases() {
        let p = pages(6);
        let list: Vec<&PageId> = p[..4].iter().collect();
        // Relevant: p1 (rank 2) and p5 (not recommended).
        let rel: HashSet<&PageId> = [&p[1], &p[5]].into_iter().collect();
        let s = score_list(&list, &rel, 4);
        assert!((s.recall - 0.5).abs() < 1e-12);
        assert_eq!(s.hr, 1.0);
        assert!((s.mrr - 0.5).abs() < 1e-12);
        // DCG = 1/log2(3); IDCG = 1 + 1/log2(3).
        let l3 = 3f64.log2();
        assert!((s.ndcg - (1.0 / l3) / (1.0 + 1.0 / l3)).abs() < 1e-12);

        let top: HashSet<&PageId> = [&p[0]].into_iter().collect();
        let s = score_list(&list, &top, 4);
        assert_eq!((s.recall, s.ndcg, s.hr, s.mrr), (1.0, 1.0, 1.0, 1.0));

        let none: HashSet<&PageId> = [&p[5]].into_iter().collect();
        assert_eq!(score_list(&list, &none, 4), UserScore::default());
        // Only the first K count.
        let last: HashSet<&PageId> = [&p[3]].into_iter().collect();
        assert_eq!(score_list(&list, &last, 3).hr, 0.0);
    }

    #[test]
    fn coverage_and_novelty_aggregate_over_lists() {
        let p = pages(4);
        let info = |x: &PageId| if x == &p[0] { 1.0 } else { 3.0 };
        let mut acc = Acc::default();
        acc.add(
            &[&p[0], &p[1]],
            UserScore {
                recall: 1.0,
                ndcg: 1.0,
                hr: 1.0,
                mrr: 1.0,
            },
            &info,
        );
        let mut other = Acc::default();
        other.add(&[&p[0], &p[2]], UserScore::default(), &info);
        acc.merge(other);
        let m = acc.metrics(10);
        assert_eq!(m.users, 2);
        assert!((m.recall - 0.5).abs() < 1e-12);
        assert!((m.coverage - 0.3).abs() < 1e-12);
        assert!((m.novelty - 2.0).abs() < 1e-12);
    }
}
