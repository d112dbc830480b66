//! The publish gate: a candidate version becomes `current` only when its offline
//! NDCG@K, overall and in every tier, is not worse than the current model's by more
//! than a tolerance. `newsrec pipeline` (its publish step) and `newsrec publish` both
//! call [`publish`].
//!
//! [`Gate::judge`] is the pure comparison; [`publish`] finds (or computes) both
//! versions' evaluations on the same data, judges, switches `current` when the gate
//! passes, and appends every decision to `publish.jsonl` in the models directory, so
//! refusals can be counted.

use std::fmt::Write as _;
use std::path::Path;

use newsrec_core::Tier;
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::error::TrainError;
use crate::evaluate::{EvaluationReport, evaluate_version, evaluation_data_fingerprint};
use crate::recommend::MixWeights;
use crate::registry::{EvaluationRecord, Registry, append_json_line, read_json_lines};

/// The gate's decisions (JSON lines) in the models directory.
pub const PUBLISH_FILE: &str = "publish.jsonl";

/// Slack for comparing two NDCG means computed from the same sums in another order.
const EPSILON: f64 = 1e-9;

/// The `[publish]` table: how the publish gate judges a candidate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublishSettings {
    /// The most NDCG@K (absolute, e.g. 0.01 = one point) the candidate may lose against
    /// the current model, overall and in each tier. 0 accepts only equal or better; a
    /// negative value demands an improvement of at least that much.
    pub tolerance: f64,
}

impl Default for PublishSettings {
    fn default() -> Self {
        Self { tolerance: 0.01 }
    }
}

impl PublishSettings {
    /// Refuses a tolerance that is not a number in -1..=1.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.tolerance.is_finite() && self.tolerance.abs() <= 1.0 {
            Ok(())
        } else {
            Err(TrainError::Invalid(format!(
                "publish.tolerance must be a number in -1..=1, got {}",
                self.tolerance
            )))
        }
    }
}

/// One group's comparison: overall or a tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    /// `overall`, `logged`, `semi_logged` or `anonymous`.
    pub group: String,
    /// The candidate's NDCG@K.
    pub candidate: f64,
    /// The current model's NDCG@K.
    pub current: f64,
    /// Whether `current - candidate` is within the tolerance.
    pub passed: bool,
}

impl GateCheck {
    /// How much NDCG the candidate loses (negative: gains).
    pub fn drop(&self) -> f64 {
        self.current - self.candidate
    }
}

/// The gate: a tolerance on the NDCG@K drop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gate {
    /// See [`PublishSettings::tolerance`].
    pub tolerance: f64,
}

impl Gate {
    /// Compares a candidate's evaluation with the current model's, overall and per tier;
    /// without a current model (the first one ever) there is nothing to compare and the
    /// gate passes. Returns whether it passes and every check.
    pub fn judge(
        &self,
        candidate: &EvaluationReport,
        current: Option<&EvaluationReport>,
    ) -> (bool, Vec<GateCheck>) {
        let Some(current) = current else {
            return (true, Vec::new());
        };
        let mut groups = vec![("overall", candidate.overall.ndcg, current.overall.ndcg)];
        for tier in Tier::ALL {
            groups.push((
                tier.as_str(),
                candidate.tiers.get(tier).ndcg,
                current.tiers.get(tier).ndcg,
            ));
        }
        let checks: Vec<GateCheck> = groups
            .into_iter()
            .map(|(group, cand, cur)| GateCheck {
                group: group.to_owned(),
                candidate: cand,
                current: cur,
                // NaN on either side fails the check.
                passed: cur - cand <= self.tolerance + EPSILON,
            })
            .collect();
        (checks.iter().all(|c| c.passed), checks)
    }
}

/// One decision of the gate, as `publish.jsonl` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateDecision {
    /// When (wall clock, RFC 3339).
    pub decided: String,
    /// The candidate version.
    pub candidate: String,
    /// The version current when the gate judged (none before the first model).
    pub current: Option<String>,
    /// The evaluation cut-off.
    pub k: usize,
    /// The tolerance applied.
    pub tolerance: f64,
    /// Whether the candidate is now current.
    pub published: bool,
    /// Why, in one phrase.
    pub reason: String,
    /// Every comparison (empty when there was nothing to compare).
    pub checks: Vec<GateCheck>,
}

impl GateDecision {
    /// The decision in a few lines: the verdict, then one line per group with both
    /// figures, the drop and the tolerance. No trailing newline.
    pub fn summary(&self) -> String {
        let verdict = if self.published {
            "published"
        } else {
            "refused"
        };
        let mut out = format!(
            "publish {verdict}: candidate {} vs current {} ({}), NDCG@{} tolerance {:+.4}",
            self.candidate,
            self.current.as_deref().unwrap_or("none"),
            self.reason,
            self.k,
            self.tolerance
        );
        for c in &self.checks {
            let _ = write!(
                out,
                "\n  {:<12} candidate {:.4}  current {:.4}  drop {:+.4}  {}",
                c.group,
                c.candidate,
                c.current,
                c.drop(),
                if c.passed { "ok" } else { "WORSE" }
            );
        }
        out
    }

    /// The decision as a result: a refusal is [`TrainError::PublishRefused`] carrying
    /// the summary, so every caller fails the same way.
    pub fn into_result(self) -> Result<Self, TrainError> {
        if self.published {
            Ok(self)
        } else {
            Err(TrainError::PublishRefused(self.summary()))
        }
    }
}

/// What [`publish`] works on.
#[derive(Debug, Clone, Copy)]
pub struct PublishRequest<'a> {
    /// Refined data directory (the evaluation's data).
    pub data: &'a Path,
    /// Models directory.
    pub models: &'a Path,
    /// The version to publish; `None` is the `candidate` version.
    pub version: Option<&'a str>,
    /// Evaluation cut-off.
    pub k: usize,
    /// Mixing weights of the evaluation (the API's).
    pub weights: &'a MixWeights,
    /// The gate's settings.
    pub settings: &'a PublishSettings,
}

/// Runs the gate on a candidate: evaluates it and the current model on the data in
/// `data` unless the history already holds such an evaluation (same version, same
/// data, same K), compares, switches `current` when the gate passes, and appends the
/// decision to [`PUBLISH_FILE`]. A refusal is a decision (`published: false`), not an
/// error: call [`GateDecision::into_result`] to fail on it.
pub fn publish(req: &PublishRequest<'_>) -> Result<GateDecision, TrainError> {
    req.settings.validate()?;
    let registry = Registry::open(req.models)?;
    let candidate = match req.version {
        Some(v) => v.to_owned(),
        None => registry.candidate_version()?.ok_or_else(|| {
            TrainError::Invalid(format!(
                "no candidate version in {}: train one with `newsrec train --candidate`",
                req.models.display()
            ))
        })?,
    };
    registry.manifest(&candidate)?;
    let current = registry.current_version()?;
    let gate = Gate {
        tolerance: req.settings.tolerance,
    };
    let (published, reason, checks) = if current.as_deref() == Some(candidate.as_str()) {
        (true, "already current".to_owned(), Vec::new())
    } else {
        let fingerprint = evaluation_data_fingerprint(req.data)?;
        let cand = evaluation_of(&registry, req, &candidate, &fingerprint)?;
        let cur = match &current {
            Some(v) => Some(evaluation_of(&registry, req, v, &fingerprint)?),
            None => None,
        };
        let (passed, checks) = gate.judge(&cand.report, cur.as_ref().map(|r| &r.report));
        let reason = match (&current, passed) {
            (None, _) => "first model".to_owned(),
            (Some(_), true) => "NDCG within tolerance".to_owned(),
            (Some(_), false) => "NDCG worse than the tolerance allows".to_owned(),
        };
        if passed {
            registry.set_current(&candidate)?;
        }
        (passed, reason, checks)
    };
    let decision = GateDecision {
        decided: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        candidate,
        current,
        k: req.k,
        tolerance: gate.tolerance,
        published,
        reason,
        checks,
    };
    append_json_line(&req.models.join(PUBLISH_FILE), &decision)?;
    info!(candidate = %decision.candidate, published, "publish gate decided");
    Ok(decision)
}

/// The newest evaluation of `version` on the data with `fingerprint` at the request's
/// K, evaluating it now when there is none.
fn evaluation_of(
    registry: &Registry,
    req: &PublishRequest<'_>,
    version: &str,
    fingerprint: &str,
) -> Result<EvaluationRecord, TrainError> {
    let found = registry.evaluations()?.into_iter().rev().find(|r| {
        r.version == version && r.report.k == req.k && r.validation.as_deref() == Some(fingerprint)
    });
    match found {
        Some(r) => Ok(r),
        None => {
            info!(%version, "no evaluation of this version on this data yet: evaluating");
            Ok(evaluate_version(req.data, req.models, version, req.k, req.weights)?.0)
        }
    }
}

/// Every decision of the gate in `models_dir`, oldest first.
pub fn decisions(models_dir: &Path) -> Result<Vec<GateDecision>, TrainError> {
    read_json_lines(&models_dir.join(PUBLISH_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::{Metrics, TierMetrics};

    fn report(overall: f64, logged: f64, semi: f64, anon: f64) -> EvaluationReport {
        let m = |ndcg| Metrics {
            users: 10,
            ndcg,
            ..Metrics::default()
        };
        EvaluationReport {
            k: 10,
            overall: m(overall),
            tiers: TierMetrics {
                logged: m(logged),
                semi_logged: m(semi),
                anonymous: m(anon),
            },
            ..EvaluationReport::default()
        }
    }

    #[test]
    fn the_first_model_always_publishes() {
        let gate = Gate { tolerance: -0.5 };
        let (passed, checks) = gate.judge(&report(0.0, 0.0, 0.0, 0.0), None);
        assert!(passed);
        assert!(checks.is_empty());
    }

    #[test]
    fn a_drop_within_the_tolerance_passes_and_beyond_it_fails() {
        let current = report(0.30, 0.40, 0.20, 0.10);
        let gate = Gate { tolerance: 0.01 };
        let (passed, checks) = gate.judge(&report(0.295, 0.395, 0.20, 0.10), Some(&current));
        assert!(passed, "{checks:?}");
        assert_eq!(checks.len(), 4);
        let (passed, _) = gate.judge(&report(0.28, 0.40, 0.20, 0.10), Some(&current));
        assert!(!passed, "overall dropped by 0.02");
        // Exactly at the tolerance passes (the figures come from different sums).
        let (passed, _) = gate.judge(&report(0.29, 0.39, 0.19, 0.09), Some(&current));
        assert!(passed);
        // Better everywhere passes with any tolerance down to the improvement.
        let better = report(0.35, 0.45, 0.25, 0.15);
        assert!(Gate { tolerance: 0.0 }.judge(&better, Some(&current)).0);
        assert!(Gate { tolerance: -0.05 }.judge(&better, Some(&current)).0);
        assert!(!Gate { tolerance: -0.06 }.judge(&better, Some(&current)).0);
    }

    #[test]
    fn every_tier_is_checked_on_its_own() {
        let current = report(0.30, 0.40, 0.20, 0.10);
        let gate = Gate { tolerance: 0.01 };
        // Overall better, one tier much worse: refused, and the check says which.
        let (passed, checks) = gate.judge(&report(0.35, 0.50, 0.05, 0.10), Some(&current));
        assert!(!passed);
        let failed: Vec<&str> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.group.as_str())
            .collect();
        assert_eq!(failed, ["semi_logged"]);
        assert!((checks[2].drop() - 0.15).abs() < 1e-12);
        let nan = report(f64::NAN, 0.40, 0.20, 0.10);
        assert!(!gate.judge(&nan, Some(&current)).0, "NaN never passes");
    }

    #[test]
    fn a_refusal_is_an_error_with_the_figures() {
        let current = report(0.30, 0.40, 0.20, 0.10);
        let gate = Gate { tolerance: 0.01 };
        let (published, checks) = gate.judge(&report(0.20, 0.40, 0.20, 0.10), Some(&current));
        let d = GateDecision {
            decided: "2026-01-01T00:00:00Z".into(),
            candidate: "v2".into(),
            current: Some("v1".into()),
            k: 10,
            tolerance: 0.01,
            published,
            reason: "NDCG worse than the tolerance allows".into(),
            checks,
        };
        let summary = d.summary();
        assert!(summary.starts_with("publish refused: candidate v2 vs current v1"));
        assert!(
            summary.contains("overall      candidate 0.2000  current 0.3000  drop +0.1000  WORSE")
        );
        assert!(
            summary.contains("logged       candidate 0.4000  current 0.4000  drop +0.0000  ok")
        );
        match d.into_result() {
            Err(TrainError::PublishRefused(text)) => assert_eq!(text, summary),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn settings_refuse_nonsense() {
        assert!(PublishSettings::default().validate().is_ok());
        for bad in [f64::NAN, f64::INFINITY, 1.5, -2.0] {
            assert!(
                PublishSettings { tolerance: bad }.validate().is_err(),
                "{bad}"
            );
        }
    }
}
