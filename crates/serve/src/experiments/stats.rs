//! The comparison of an experiment's variants from the online counters: HR@K with its
//! 95% Wilson interval, CTR and MRR per variant, and against the control variant the
//! relative lift of HR@K and a two-sided two-proportion z-test.
//!
//! The test takes served lists as independent trials. Lists shown to one reader are
//! not (a keen reader hits more of them), so when readers see many lists each the
//! p-values come out smaller than they should; weigh a small p from few readers
//! accordingly.

use std::collections::BTreeMap;

use newsrec_features::online::{CounterKey, Counters};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Experiment, parse_label};

/// The normal quantile of a two-sided 95% interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// The 95% Wilson score interval of `hits` successes out of `n`; `(0, 1)` when `n = 0`.
pub fn wilson(hits: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (n, p, z2) = (n as f64, hits as f64 / n as f64, Z_95 * Z_95);
    let centre = p + z2 / (2.0 * n);
    let spread = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let d = 1.0 + z2 / n;
    (
        ((centre - spread) / d).max(0.0),
        ((centre + spread) / d).min(1.0),
    )
}

/// The two-sided p-value of the pooled two-proportion z-test of `h1/n1` against
/// `h2/n2`; `None` when either side has no lists or the pooled rate is 0 or 1.
pub fn two_proportion_p(h1: u64, n1: u64, h2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (h1 + h2) as f64 / (n1f + n2f);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se == 0.0 || !se.is_finite() {
        return None;
    }
    let z = (h1 as f64 / n1f - h2 as f64 / n2f) / se;
    Some(libm::erfc(z.abs() / std::f64::consts::SQRT_2).min(1.0))
}

/// One variant's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VariantReport {
    /// The variant.
    pub name: String,
    /// Its configured weight.
    pub weight: u32,
    /// Lists served to it.
    pub served: u64,
    /// Lists with at least one attributed click.
    pub hits: u64,
    /// Attributed clicks.
    pub clicks: u64,
    /// `hits / served`: HR@K.
    pub hit_rate: f64,
    /// 95% Wilson interval of `hit_rate`, `[low, high]`.
    pub hit_rate_ci: [f64; 2],
    /// `clicks / served`.
    pub ctr: f64,
    /// Mean reciprocal rank of each list's first attributed click.
    pub mrr: f64,
    /// `hit_rate / control's − 1`; `None` for control or when control has no hits.
    pub lift: Option<f64>,
    /// Two-sided two-proportion z-test of `hit_rate` against control's; `None` for
    /// control or without lists on either side.
    pub p_value: Option<f64>,
}

/// One experiment's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ExperimentReport {
    /// The experiment.
    pub name: String,
    /// Its layer.
    pub layer: String,
    /// The variant the others are compared with.
    pub control: String,
    /// Every variant, in configured order.
    pub variants: Vec<VariantReport>,
}

/// The baseline of an experiment: its variant named `control`, else its first.
pub fn control_of(e: &Experiment) -> &str {
    e.variants
        .iter()
        .find(|v| v.name == newsrec_core::CONTROL)
        .or(e.variants.first())
        .map_or(newsrec_core::CONTROL, |v| v.name.as_str())
}

/// The reports of `experiments` from the online counters (every tier and model version
/// of a variant summed; counters of labels naming no configured variant are ignored).
pub fn reports(
    experiments: &[Experiment],
    counters: &[(CounterKey, Counters)],
) -> Vec<ExperimentReport> {
    let mut sums: BTreeMap<(&str, &str), Counters> = BTreeMap::new();
    for (key, c) in counters {
        for pair in parse_label(&key.variant) {
            sums.entry(pair).or_default().add(c);
        }
    }
    experiments
        .iter()
        .map(|e| {
            let control = control_of(e);
            let base = sums
                .get(&(e.name.as_str(), control))
                .cloned()
                .unwrap_or_default();
            let variants = e
                .variants
                .iter()
                .map(|v| {
                    let c = sums
                        .get(&(e.name.as_str(), v.name.as_str()))
                        .cloned()
                        .unwrap_or_default();
                    variant_report(&v.name, v.weight, &c, (v.name != control).then_some(&base))
                })
                .collect();
            ExperimentReport {
                name: e.name.clone(),
                layer: e.layer.clone(),
                control: control.to_owned(),
                variants,
            }
        })
        .collect()
}

fn variant_report(
    name: &str,
    weight: u32,
    c: &Counters,
    control: Option<&Counters>,
) -> VariantReport {
    let per = |x: f64| {
        if c.served == 0 {
            0.0
        } else {
            x / c.served as f64
        }
    };
    let hit_rate = per(c.hits as f64);
    let (low, high) = wilson(c.hits, c.served);
    let (lift, p_value) = match control {
        Some(b) => {
            let base = if b.served == 0 {
                0.0
            } else {
                b.hits as f64 / b.served as f64
            };
            (
                (base > 0.0 && c.served > 0).then(|| hit_rate / base - 1.0),
                two_proportion_p(c.hits, c.served, b.hits, b.served),
            )
        }
        None => (None, None),
    };
    VariantReport {
        name: name.to_owned(),
        weight,
        served: c.served,
        hits: c.hits,
        clicks: c.clicks,
        hit_rate,
        hit_rate_ci: [low, high],
        ctr: per(c.clicks as f64),
        mrr: per(c.rr_sum),
        lift,
        p_value,
    }
}
