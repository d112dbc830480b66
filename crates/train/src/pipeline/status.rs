//! What the models directory says about the pipeline, for monitoring: when it last
//! succeeded, how long each step took, how often the publish gate refused.

use std::collections::BTreeMap;
use std::path::Path;

use super::{Pipeline, RunReport, StepStatus};
use crate::error::TrainError;
use crate::pipeline::PipelineStep;
use crate::publish::decisions;

/// The pipeline as its run log and the gate's decisions describe it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineStatus {
    /// When the latest successful run that reached the publish step ended (Unix
    /// seconds). With one task per step (Airflow) each step is its own run; the publish
    /// step succeeds only after every step before it did.
    pub last_success: Option<f64>,
    /// Seconds each step took the last time it ran (not when it was skipped).
    pub step_seconds: BTreeMap<String, f64>,
    /// Candidates the gate refused.
    pub refusals: u64,
}

impl PipelineStatus {
    /// Reads the run log and the gate's decisions in `models_dir` (both may be absent).
    pub fn read(models_dir: &Path) -> Result<Self, TrainError> {
        let runs = Pipeline::history(models_dir)?;
        let refusals = decisions(models_dir)?
            .iter()
            .filter(|d| !d.published)
            .count() as u64;
        Ok(Self::from_runs(&runs, refusals))
    }

    /// The status of a run log (oldest first) and a refusal count.
    pub fn from_runs(runs: &[RunReport], refusals: u64) -> Self {
        let last = PipelineStep::Publish.name();
        let last_success = runs
            .iter()
            .rev()
            .filter(|r| r.ok() && r.steps.iter().any(|s| s.name == last))
            .find_map(run_end);
        let mut step_seconds = BTreeMap::new();
        for run in runs {
            for s in run.steps.iter().filter(|s| s.status == StepStatus::Ran) {
                step_seconds.insert(s.name.clone(), s.ms as f64 / 1000.0);
            }
        }
        Self {
            last_success,
            step_seconds,
            refusals,
        }
    }
}

/// When a run ended (Unix seconds), from its start and duration.
fn run_end(run: &RunReport) -> Option<f64> {
    let started = chrono::DateTime::parse_from_rfc3339(&run.started).ok()?;
    Some(started.timestamp_millis() as f64 / 1000.0 + run.ms as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::StepOutcome;

    fn run(started: &str, ms: u64, steps: &[(&str, StepStatus, u64)]) -> RunReport {
        RunReport {
            started: started.into(),
            ms,
            steps: steps
                .iter()
                .map(|(name, status, ms)| StepOutcome {
                    name: (*name).into(),
                    status: *status,
                    ms: *ms,
                    fingerprint: String::new(),
                    error: None,
                })
                .collect(),
        }
    }

    #[test]
    fn last_success_needs_the_publish_step_and_durations_only_count_work() {
        use StepStatus::{Failed, Ran, Skipped};
        let runs = [
            run(
                "2026-01-01T00:00:00Z",
                4000,
                &[
                    ("process", Ran, 1000),
                    ("train", Ran, 2000),
                    ("publish", Ran, 500),
                ],
            ),
            // One task per step: a train-only run, then a skipped publish-only run.
            run("2026-01-02T00:00:00Z", 3000, &[("train", Ran, 3000)]),
            run("2026-01-02T00:01:00Z", 20, &[("publish", Skipped, 20)]),
            // A refused publish: not a success.
            run("2026-01-03T00:00:00Z", 900, &[("publish", Failed, 900)]),
        ];
        let s = PipelineStatus::from_runs(&runs, 1);
        let jan2 = chrono::DateTime::parse_from_rfc3339("2026-01-02T00:01:00Z")
            .expect("time")
            .timestamp() as f64;
        assert_eq!(s.last_success, Some(jan2 + 0.02));
        assert_eq!(s.step_seconds["process"], 1.0);
        assert_eq!(s.step_seconds["train"], 3.0, "the latest run of the step");
        assert_eq!(
            s.step_seconds["publish"], 0.5,
            "skips and failures do not count"
        );
        assert_eq!(s.refusals, 1);
        assert_eq!(PipelineStatus::from_runs(&runs[1..2], 0).last_success, None);
    }
}
