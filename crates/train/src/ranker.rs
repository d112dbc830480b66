//! The learned ranker: each tier's mixing weights fitted at train time on a time
//! holdout ([`crate::holdout`]), so the mix follows the data at hand instead of
//! constants chosen on one data set.
//!
//! The ranker is the recommend path's own scoring (a weighted sum of the components,
//! each rescaled over the request's candidates, times freshness, and for anonymous
//! readers times similarity to what they opened), with its parameters fitted by
//! coordinate ascent on holdout NDCG@K. Fitting the metric the product is judged by,
//! through the very function that serves, leaves nothing to drift between training
//! and serving. Overfitting is held off by fitting on one half of the holdout readers
//! and judging it on the other half against the best hand-set variant (hybrid, CF-only
//! or content-only, judged on every holdout reader): a tier keeps the hand-set order
//! unless a challenger beats it by [`RankerParams::switch_se`] standard errors on
//! readers it was not fitted on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use newsrec_core::time::rfc3339;
use newsrec_core::{PageId, Tier};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::dataset::TrainingData;
use crate::error::TrainError;
use crate::evaluate::{EvalUser, Evaluator, score_list};
use crate::fit::{TrainParams, build};
use crate::holdout::{self, HoldoutSettings};
use crate::model_set::ModelSet;
use crate::progress::Progress;
use crate::recommend::{HAND, MixWeights, Prepared};
use crate::registry::{DataRange, Manifest, RowCounts};

/// How the ranker is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RankerParams {
    /// Fit a ranker at all (off: every tier serves the hand-set weights).
    pub enabled: bool,
    /// The time holdout it is fitted on.
    pub holdout: HoldoutSettings,
    /// Passes of coordinate ascent over the tier's parameters.
    pub rounds: usize,
    /// The cut-off of the NDCG it maximises.
    pub k: usize,
    /// Fewer holdout readers than this in a tier: the tier keeps the hand-set weights.
    pub min_readers: usize,
    /// A variant replaces the hand-set weights (and the fitted weights the best
    /// hand-set variant) only when its mean NDCG@K gain, readers paired, exceeds this
    /// many standard errors: four candidates are compared, so one error is too easily
    /// cleared by chance.
    pub switch_se: f64,
}

impl Default for RankerParams {
    fn default() -> Self {
        Self {
            enabled: true,
            holdout: HoldoutSettings::default(),
            rounds: 2,
            k: 10,
            min_readers: 60,
            switch_se: 2.0,
        }
    }
}

impl RankerParams {
    pub(crate) fn check(&self) -> Result<(), TrainError> {
        self.holdout.check()?;
        if !(self.switch_se.is_finite() && self.switch_se >= 0.0) {
            return Err(TrainError::Invalid(format!(
                "ranker.switch_se must be finite and ≥ 0, got {}",
                self.switch_se
            )));
        }
        if self.k == 0 || self.rounds == 0 {
            return Err(TrainError::Invalid(
                "ranker.k and ranker.rounds must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// One tier's fitted weights and what the holdout said of them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TierRanker {
    /// The tier.
    pub tier: Tier,
    /// What this tier serves with `ranking = "learned"`.
    pub weights: MixWeights,
    /// The parameters of `weights` the fit could move: the tier's features.
    pub features: Vec<String>,
    /// The variant it serves: `fitted`, `hand`, `cf-only` or `content-only`.
    pub chosen: String,
    /// Holdout readers of the tier (fit half + check half).
    pub readers: u64,
    /// Holdout NDCG@K of the hand-set variants (hand, cf-only, content-only) on every
    /// holdout reader of the tier.
    pub fixed_ndcg: [f64; 3],
    /// On the check half: the fitted weights' mean NDCG@K gain over the best hand-set
    /// variant, and its standard error (readers paired).
    pub fitted_gain: [f64; 2],
}

/// The learned ranker of a model version (empty when it was not fitted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ranker {
    /// The holdout's cut, epoch ms.
    pub cut: Option<i64>,
    /// Fitted tiers; a tier not listed (too few holdout readers) serves the hand-set
    /// weights.
    pub tiers: Vec<TierRanker>,
}

/// The ranker as JSON in a version directory, for people and tools (the model file
/// holds the copy that serves).
pub const RANKER_FILE: &str = "ranker.json";

impl Ranker {
    pub(crate) fn write(&self, path: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| TrainError::artifact(path, e.to_string()))?;
        std::fs::write(path, text).map_err(|e| TrainError::io(path, e))
    }

    /// The weights fitted for `tier`, if any. A tier that kept the hand-set order has
    /// none: it serves the configured `[serve.mix]`, whatever that is.
    pub fn weights(&self, tier: Tier) -> Option<&MixWeights> {
        self.tiers
            .iter()
            .find(|t| t.tier == tier && t.chosen != HAND)
            .map(|t| &t.weights)
    }
}

/// One tunable parameter of the mix and the values tried for it.
#[derive(Clone, Copy)]
struct Knob {
    name: &'static str,
    values: &'static [f64],
    get: fn(&MixWeights) -> f64,
    set: fn(&mut MixWeights, f64),
}

const WEIGHTS: &[f64] = &[0.0, 0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.5];
const SHARES: &[f64] = &[0.0, 0.5, 0.75, 0.9, 0.97, 1.0];
const HALF_LIVES: &[f64] = &[3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 192.0];

macro_rules! knob {
    ($field:ident, $values:expr) => {
        Knob {
            name: stringify!($field),
            values: $values,
            get: |w| w.$field,
            set: |w, v| w.$field = v,
        }
    };
}

/// The parameters each tier's score depends on.
fn knobs(tier: Tier) -> Vec<Knob> {
    let mut k = match tier {
        Tier::Logged => vec![knob!(cf, WEIGHTS), knob!(content, WEIGHTS)],
        Tier::SemiLogged => vec![knob!(cluster, WEIGHTS), knob!(content, WEIGHTS)],
        Tier::Anonymous => vec![knob!(prior, WEIGHTS), knob!(anonymous_content, SHARES)],
    };
    k.extend([
        knob!(popular, WEIGHTS),
        knob!(trending, WEIGHTS),
        knob!(read_next, WEIGHTS),
        knob!(recency, SHARES),
        knob!(recency_half_life_hours, HALF_LIVES),
    ]);
    k
}

/// One tier's holdout readers, each request prepared once ([`Prepared`]) and scored
/// under any weights of the tier.
struct TierBench<'a> {
    tier: Tier,
    readers: Vec<(Prepared<'a>, HashSet<&'a PageId>)>,
    k: usize,
}

impl<'a> TierBench<'a> {
    fn new(model: &'a ModelSet, users: &[&'a EvalUser], tier: Tier, k: usize) -> Self {
        let hand = MixWeights::default();
        let readers = users
            .par_iter()
            .map(|u| {
                let signals = model.offline_signals(u.ctx.last_page.as_ref());
                (
                    model.prepare(&u.ctx, &signals, k, &hand),
                    u.relevant.iter().collect(),
                )
            })
            .collect();
        Self { tier, readers, k }
    }

    /// NDCG@K of each reader of `idx` when the tier ranks with `w`.
    fn scores(&self, idx: &[usize], w: &MixWeights) -> Vec<f64> {
        idx.par_iter()
            .map(|&i| {
                let (prepared, relevant) = &self.readers[i];
                let list = prepared.list(w, self.k);
                let refs: Vec<&PageId> = list.iter().collect();
                score_list(&refs, relevant, self.k).ndcg
            })
            .collect()
    }

    /// Mean NDCG@K of the readers of `idx` when the tier ranks with `w`.
    fn ndcg(&self, idx: &[usize], w: &MixWeights) -> f64 {
        let s = self.scores(idx, w);
        s.iter().sum::<f64>() / s.len().max(1) as f64
    }
}

/// Mean and standard error of `a − b`, reader by reader.
fn paired_gain(a: &[f64], b: &[f64]) -> [f64; 2] {
    let n = a.len().min(b.len());
    if n < 2 {
        return [0.0, f64::INFINITY];
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    [mean, (var / n as f64).sqrt()]
}

/// A challenger replaces the incumbent only when its gain clears `se` standard errors.
fn clears(g: [f64; 2], se: f64) -> bool {
    g[0] > 0.0 && g[0] > se * g[1]
}

fn holdout_manifest(data: &TrainingData, p: &TrainParams) -> Manifest {
    let (first_ts, last_ts) = (
        data.interactions.ts.first().copied().unwrap_or(0),
        data.interactions.ts.last().copied().unwrap_or(0),
    );
    Manifest {
        version: "holdout".into(),
        format: ModelSet::format(),
        created: String::new(),
        data: DataRange {
            first_ts,
            last_ts,
            first: rfc3339(first_ts),
            last: rfc3339(last_ts),
        },
        data_fingerprint: String::new(),
        params: p.clone(),
        rows: RowCounts::default(),
        timings_ms: Default::default(),
        metrics: None,
        evaluated: None,
    }
}

/// Coordinate ascent from the best of `starts` on the readers `idx`.
fn ascend(
    bench: &TierBench<'_>,
    idx: &[usize],
    starts: &[MixWeights],
    rounds: usize,
    progress: &mut (Progress, u64),
) -> MixWeights {
    let mut best = starts[0].clone();
    let mut best_score = f64::NEG_INFINITY;
    for s in starts {
        let v = bench.ndcg(idx, s);
        if v > best_score {
            (best, best_score) = (s.clone(), v);
        }
    }
    for _ in 0..rounds {
        let mut moved = false;
        for knob in knobs(bench.tier) {
            for &v in knob.values {
                progress.1 += 1;
                if progress.1.is_multiple_of(25) {
                    progress.0.set(progress.1);
                }
                if (knob.get)(&best) == v {
                    continue;
                }
                let mut w = best.clone();
                (knob.set)(&mut w, v);
                let score = bench.ndcg(idx, &w);
                if score > best_score + 1e-9 {
                    (best, best_score, moved) = (w, score, true);
                }
            }
        }
        if !moved {
            break;
        }
    }
    best
}

/// Fits one tier: the best hand-set variant on every holdout reader, then the fit on
/// even readers against it on odd ones.
fn fit_tier(
    bench: &TierBench<'_>,
    variants: &[(&'static str, MixWeights); 3],
    r: &RankerParams,
    progress: &mut (Progress, u64),
) -> TierRanker {
    let all: Vec<usize> = (0..bench.readers.len()).collect();
    // The hand-set variants were fitted on none of these readers: all of them judge.
    let fixed: Vec<Vec<f64>> = variants
        .iter()
        .map(|(_, w)| bench.scores(&all, w))
        .collect();
    let mut best = 0;
    let mut best_gain = 0.0;
    for (i, f) in fixed.iter().enumerate().skip(1) {
        let g = paired_gain(f, &fixed[0]);
        if clears(g, r.switch_se) && g[0] > best_gain {
            (best, best_gain) = (i, g[0]);
        }
    }
    let fit_half: Vec<usize> = all.iter().copied().step_by(2).collect();
    let check_half: Vec<usize> = all.iter().copied().skip(1).step_by(2).collect();
    let starts = variants.clone().map(|(_, w)| w);
    let fitted = ascend(bench, &fit_half, &starts, r.rounds, progress);
    let fitted_check = bench.scores(&check_half, &fitted);
    let best_check: Vec<f64> = check_half.iter().map(|&i| fixed[best][i]).collect();
    let gain = paired_gain(&fitted_check, &best_check);
    let (weights, chosen) = if clears(gain, r.switch_se) {
        (fitted, "fitted")
    } else {
        (variants[best].1.clone(), variants[best].0)
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let fixed_ndcg = [mean(&fixed[0]), mean(&fixed[1]), mean(&fixed[2])];
    let tier = bench.tier;
    info!(%tier, readers = all.len(), chosen, gain = gain[0], se = gain[1], hand = fixed_ndcg[0], "ranker fitted");
    TierRanker {
        tier,
        weights,
        features: knobs(tier).iter().map(|k| k.name.to_owned()).collect(),
        chosen: chosen.into(),
        readers: all.len() as u64,
        fixed_ndcg,
        fitted_gain: gain,
    }
}

/// In debug builds: the prepared lists the fit scored are the recommend path's own.
fn check_prepared(model: &ModelSet, users: &[&EvalUser], k: usize) {
    if !cfg!(debug_assertions) {
        return;
    }
    let learned = MixWeights::default();
    for u in users.iter().take(25) {
        let signals = model.offline_signals(u.ctx.last_page.as_ref());
        let tier = u.ctx.tier();
        let w = model.ranker().weights(tier).cloned().unwrap_or_default();
        let prepared = model.prepare(&u.ctx, &signals, k, &learned).list(&w, k);
        let served: Vec<PageId> = model
            .recommend(&u.ctx, &signals, k, &learned)
            .items
            .into_iter()
            .map(|r| r.page)
            .collect();
        assert_eq!(prepared, served, "prepared list of a {tier} reader");
    }
}

/// Fits every tier's ranker on a holdout of `data`. An empty ranker when the data has
/// no usable holdout or fitting is off.
pub(crate) fn fit_ranker(data: &TrainingData, p: &TrainParams) -> Result<Ranker, TrainError> {
    let r = &p.ranker;
    if !r.enabled {
        return Ok(Ranker::default());
    }
    let started = Instant::now();
    let Some(h) = holdout::split(data, &r.holdout) else {
        info!("no holdout readers: every tier keeps the hand-set weights");
        return Ok(Ranker::default());
    };
    let inner = TrainParams {
        ranker: RankerParams {
            enabled: false,
            ..r.clone()
        },
        ..p.clone()
    };
    let (artifacts, _, _) = build(&h.fit, &inner)?;
    let mut model = ModelSet::new(holdout_manifest(&h.fit, p), PathBuf::new(), artifacts);
    let eval = Evaluator::new(&h.fit, &h.rows);
    let variants = MixWeights::default().hand_variants();
    let mut out = Ranker {
        cut: Some(h.cut),
        ..Default::default()
    };
    let tiers = [Tier::Anonymous, Tier::SemiLogged, Tier::Logged];
    let per_tier = (variants.len() + r.rounds * knobs(Tier::Logged).len() * WEIGHTS.len()) as u64;
    let mut progress = (Progress::new("ranker", per_tier * tiers.len() as u64), 0);
    // Anonymous first: each tier falls back to the ones fitted before it.
    for (n, tier) in tiers.into_iter().enumerate() {
        let users: Vec<&EvalUser> = eval
            .users()
            .iter()
            .filter(|u| u.ctx.tier() == tier)
            .collect();
        let fitted = if users.len() < r.min_readers {
            info!(%tier, readers = users.len(), "too few holdout readers: hand-set weights");
            None
        } else {
            Some(fit_tier(
                &TierBench::new(&model, &users, tier, r.k),
                &variants,
                r,
                &mut progress,
            ))
        };
        out.tiers.extend(fitted);
        // The later tiers fall back to this one as it will serve.
        model.set_ranker(out.clone());
        check_prepared(&model, &users, r.k);
        progress.1 = progress.1.max(per_tier * (n as u64 + 1));
    }
    progress.0.finish();
    info!(
        ms = started.elapsed().as_millis() as u64,
        holdout_rows = h.rows.len(),
        "ranker fitted"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenger_needs_a_gain_beyond_the_noise() {
        let base = [0.2, 0.4, 0.1, 0.3];
        let better: Vec<f64> = base.iter().map(|x| x + 0.1).collect();
        let g = paired_gain(&better, &base);
        assert!((g[0] - 0.1).abs() < 1e-12 && g[1] < 1e-12);
        assert!(clears(g, 2.0));
        // Gains that are half noise clear one error, not two.
        let noisy = [0.35, 0.35, 0.25, 0.35];
        let g = paired_gain(&noisy, &base);
        assert!(clears(g, 1.0) && !clears(g, 2.0), "{g:?}");
        assert!(!clears(paired_gain(&base, &better), 0.0));
        assert!(
            !clears(paired_gain(&[1.0], &[0.0]), 0.0),
            "one reader says nothing"
        );
    }

    #[test]
    fn every_tier_has_its_own_knobs_and_the_ranker_finds_them() {
        for t in Tier::ALL {
            let names: Vec<_> = knobs(t).iter().map(|k| k.name).collect();
            assert!(
                names.contains(&"recency") && names.contains(&"popular"),
                "{t}"
            );
        }
        let mut r = Ranker::default();
        assert!(r.weights(Tier::Logged).is_none());
        let w = MixWeights {
            cf: 0.25,
            ..MixWeights::default()
        };
        r.tiers.push(TierRanker {
            tier: Tier::Logged,
            weights: w.clone(),
            features: Vec::new(),
            chosen: "fitted".into(),
            readers: 0,
            fixed_ndcg: [0.0; 3],
            fitted_gain: [0.0; 2],
        });
        assert_eq!(r.weights(Tier::Logged), Some(&w));
        assert!(r.weights(Tier::Anonymous).is_none());
        // Kept the hand-set order: the configured weights serve, not a copy of them.
        r.tiers[0].chosen = HAND.into();
        assert!(r.weights(Tier::Logged).is_none());
    }
}
