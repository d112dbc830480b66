//! A/B experiments: live traffic split between variants of the ranking.
//!
//! An experiment (`[[serve.experiments]]`) names its variants with weights; a variant
//! may override mixing weights, pin a model version from the registry, or both. A user's
//! variant is a stable hash of (salt, user id) into the weighted buckets, so it holds
//! across requests, restarts and replicas. Experiments in different `layer`s split the
//! traffic independently (a user is in one variant of each); two experiments in one
//! layer would claim the same traffic and are refused, as are layers that change the
//! same thing.
//!
//! What a user was served is labelled `<experiment>=<variant>` (several layers: joined
//! by `,`, in the configured order): the `variant` of every response and served list,
//! and so of the online counters. Without experiments the label is
//! [`CONTROL`](newsrec_core::CONTROL). [`stats`] turns the counters into the
//! comparison `GET /experiments` reports.

pub mod stats;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use newsrec_core::{CONTROL, ConfigError, UserId};
use newsrec_train::{MixWeights, Ranking};
use serde::{Deserialize, Serialize};

/// The layer of an experiment that names none.
pub const DEFAULT_LAYER: &str = "default";

/// One experiment, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Mixed into the assignment hash: a new salt reshuffles the users.
    pub salt: String,
    /// Experiments in different layers split the traffic independently.
    #[serde(default = "default_layer")]
    pub layer: String,
    /// Its variants, at least two.
    pub variants: Vec<Variant>,
}

fn default_layer() -> String {
    DEFAULT_LAYER.to_owned()
}

/// One variant of an experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Its name (letters, digits, `-`, `_`, `.`); `control` is the baseline the others
    /// are compared with (the first variant when none is called so).
    pub name: String,
    /// Its share of the traffic, relative to the other variants' weights.
    pub weight: u32,
    /// Mixing weights that differ from `[serve.mix]`.
    #[serde(default)]
    pub mix: MixOverride,
    /// A model version of the registry to serve instead of `current`.
    #[serde(default)]
    pub model: Option<String>,
}

/// Mixing weights a variant overrides; the rest come from `[serve.mix]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixOverride {
    /// [`MixWeights::ranking`]: `learned` or `hand`. A variant that sets any weight
    /// and not this ranks with its weights (`hand`): a learned tier would ignore them.
    pub ranking: Option<Ranking>,
    /// [`MixWeights::cf`].
    pub cf: Option<f64>,
    /// [`MixWeights::content`].
    pub content: Option<f64>,
    /// [`MixWeights::cluster`].
    pub cluster: Option<f64>,
    /// [`MixWeights::prior`].
    pub prior: Option<f64>,
    /// [`MixWeights::popular`].
    pub popular: Option<f64>,
    /// [`MixWeights::trending`].
    pub trending: Option<f64>,
    /// [`MixWeights::read_next`].
    pub read_next: Option<f64>,
    /// [`MixWeights::recency`].
    pub recency: Option<f64>,
    /// [`MixWeights::recency_half_life_hours`].
    pub recency_half_life_hours: Option<f64>,
    /// [`MixWeights::anonymous_content`].
    pub anonymous_content: Option<f64>,
}

impl MixOverride {
    /// `(name, value)` of every weight set.
    fn set(&self) -> Vec<(&'static str, f64)> {
        [
            ("cf", self.cf),
            ("content", self.content),
            ("cluster", self.cluster),
            ("prior", self.prior),
            ("popular", self.popular),
            ("trending", self.trending),
            ("read_next", self.read_next),
            ("recency", self.recency),
            ("recency_half_life_hours", self.recency_half_life_hours),
            ("anonymous_content", self.anonymous_content),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect()
    }

    /// `base` with these weights put over it.
    pub fn apply(&self, base: &MixWeights) -> MixWeights {
        let mut m = base.clone();
        m.ranking = match (self.ranking, self.set().is_empty()) {
            (Some(r), _) => r,
            (None, true) => base.ranking,
            (None, false) => Ranking::Hand,
        };
        let pick = |o: Option<f64>, b: f64| o.unwrap_or(b);
        m.cf = pick(self.cf, m.cf);
        m.content = pick(self.content, m.content);
        m.cluster = pick(self.cluster, m.cluster);
        m.prior = pick(self.prior, m.prior);
        m.popular = pick(self.popular, m.popular);
        m.trending = pick(self.trending, m.trending);
        m.read_next = pick(self.read_next, m.read_next);
        m.recency = pick(self.recency, m.recency);
        m.recency_half_life_hours = pick(self.recency_half_life_hours, m.recency_half_life_hours);
        m.anonymous_content = pick(self.anonymous_content, m.anonymous_content);
        m
    }
}

/// Checks what serde cannot (each experiment alone, then how they share the traffic).
/// Model versions are checked against the registry when the API starts.
pub fn validate(experiments: &[Experiment]) -> Result<(), ConfigError> {
    let err = |e: String| Err(ConfigError::new(e));
    let mut names = BTreeSet::new();
    let mut layers: BTreeMap<&str, &str> = BTreeMap::new();
    let mut salts: BTreeMap<&str, &str> = BTreeMap::new();
    // What each layer changes: mixing weights by name, and `model`.
    let mut changed: BTreeMap<&str, &str> = BTreeMap::new();
    for e in experiments {
        if !valid_name(&e.name) {
            return err(format!(
                "experiment name {:?}: use letters, digits, `-`, `_` and `.`",
                e.name
            ));
        }
        if !names.insert(e.name.as_str()) {
            return err(format!("two experiments are named {:?}", e.name));
        }
        if e.salt.is_empty() {
            return err(format!("experiment {}: salt must not be empty", e.name));
        }
        if let Some(other) = layers.insert(&e.layer, &e.name) {
            return err(format!(
                "experiments {other} and {} both claim the traffic of layer {:?}; give each \
                 its own `layer` (layers split the traffic independently)",
                e.name, e.layer
            ));
        }
        if let Some(other) = salts.insert(&e.salt, &e.name) {
            return err(format!(
                "experiments {other} and {} have the same salt: they would split the same \
                 readers the same way; give each its own",
                e.name
            ));
        }
        if e.variants.len() < 2 {
            return err(format!(
                "experiment {}: needs at least two variants",
                e.name
            ));
        }
        let mut variants = BTreeSet::new();
        let mut mine = BTreeSet::new();
        for v in &e.variants {
            let at = format!("experiment {}, variant {:?}", e.name, v.name);
            if !valid_name(&v.name) {
                return err(format!("{at}: use letters, digits, `-`, `_` and `.`"));
            }
            if !variants.insert(v.name.as_str()) {
                return err(format!("{at}: two variants have this name"));
            }
            if v.weight == 0 {
                return err(format!("{at}: weight must be positive"));
            }
            for (name, w) in v.mix.set() {
                if !w.is_finite() || w < 0.0 {
                    return err(format!("{at}: mix.{name} must be finite and non-negative"));
                }
                mine.insert(name);
            }
            if let Some(m) = &v.model {
                if m.is_empty() {
                    return err(format!("{at}: model must name a version"));
                }
                mine.insert("model");
            }
        }
        for what in mine {
            if let Some(other) = changed.insert(what, &e.name) {
                return err(format!(
                    "experiments {other} and {} both change {what}: a user in both would \
                     get one of them only; put them in one experiment",
                    e.name
                ));
            }
        }
    }
    Ok(())
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The model version each configured pin names, once each.
pub fn pinned_versions(experiments: &[Experiment]) -> BTreeSet<String> {
    experiments
        .iter()
        .flat_map(|e| &e.variants)
        .filter_map(|v| v.model.clone())
        .collect()
}

/// What one request is served with.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment<'a> {
    /// The label of the user's variants (`exp=variant`, joined by `,`), or `control`.
    pub label: Cow<'static, str>,
    /// The mixing weights to rank with (borrowed when no experiment runs).
    pub mix: Cow<'a, MixWeights>,
    /// The pinned model version, when a variant pins one.
    pub model: Option<&'a str>,
}

/// The experiments of a running API, ready to assign users.
#[derive(Debug, Clone, Default)]
pub struct Experiments {
    list: Vec<Experiment>,
    /// Per experiment, each variant's upper bucket bound (cumulative weights).
    bounds: Vec<Vec<u64>>,
}

impl Experiments {
    /// Compiles validated experiments.
    pub fn new(list: &[Experiment]) -> Result<Self, ConfigError> {
        validate(list)?;
        let bounds: Vec<Vec<u64>> = list
            .iter()
            .map(|e| {
                e.variants
                    .iter()
                    .scan(0u64, |acc, v| {
                        *acc += u64::from(v.weight);
                        Some(*acc)
                    })
                    .collect()
            })
            .collect();
        Ok(Self {
            list: list.to_vec(),
            bounds,
        })
    }

    /// Whether any experiment runs.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The configured experiments.
    pub fn list(&self) -> &[Experiment] {
        &self.list
    }

    /// The index of `user`'s variant in each experiment, in order.
    pub fn variants_of(&self, user: &UserId) -> Vec<usize> {
        self.list
            .iter()
            .zip(&self.bounds)
            .map(|(e, bounds)| {
                let total = bounds.last().copied().unwrap_or(1);
                let b = bucket(&e.salt, user.as_str(), total);
                bounds.partition_point(|&upper| upper <= b)
            })
            .collect()
    }

    /// What `user` is served with, over `base` mixing weights. `None` (no user, as for
    /// similar-article lists) is the control label with `base`.
    pub fn assign<'a>(&'a self, user: Option<&UserId>, base: &'a MixWeights) -> Assignment<'a> {
        let Some(user) = user.filter(|_| !self.is_empty()) else {
            return Assignment {
                label: Cow::Borrowed(CONTROL),
                mix: Cow::Borrowed(base),
                model: None,
            };
        };
        let mut label = String::new();
        let mut mix = base.clone();
        let mut model = None;
        for (e, i) in self.list.iter().zip(self.variants_of(user)) {
            let v = &e.variants[i];
            if !label.is_empty() {
                label.push(',');
            }
            label.push_str(&e.name);
            label.push('=');
            label.push_str(&v.name);
            mix = v.mix.apply(&mix);
            model = model.or(v.model.as_deref());
        }
        Assignment {
            label: Cow::Owned(label),
            mix: Cow::Owned(mix),
            model,
        }
    }
}

/// `(experiment, variant)` pairs a served label names (`exp=variant,…`); none for
/// `control`, the label without experiments.
pub fn parse_label(label: &str) -> impl Iterator<Item = (&str, &str)> {
    label.split(',').filter_map(|part| part.split_once('='))
}

/// A uniform bucket in `0..total` for `(salt, user)`: FNV-1a over both (a separator
/// between them), finished by SplitMix64's mixer so nearby ids spread, then scaled by
/// the high half of a 128-bit product (no modulo bias to speak of).
pub fn bucket(salt: &str, user: &str, total: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.bytes().chain([0xff]).chain(user.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    ((u128::from(h) * u128::from(total.max(1))) >> 64) as u64
}

#[cfg(test)]
mod tests;
