//! newsrec's model pipeline: which steps exist, in which order, what each one reads
//! (for its fingerprint) and writes, and what it runs.
//!
//! `process` (raw data → refined files) → `train` (refined files → a new candidate
//! version) → `evaluate` (the candidate on the validation set) → `publish` (the gate:
//! the candidate becomes current only if its NDCG is within the tolerance of the
//! current model's, see [`crate::publish`]). The process step's work is the caller's
//! (the `process` closure of [`PipelineConfig::run`]): this crate does not read raw
//! data.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use newsrec_core::refined;
use tracing::info;

use super::{Pipeline, RunReport, Step, StepError, StepFn};
use crate::error::TrainError;
use crate::evaluate::evaluate_version;
use crate::fit::{TrainParams, train_candidate};
use crate::publish::{PublishRequest, PublishSettings, publish};
use crate::recommend::MixWeights;
use crate::registry::{CANDIDATE_LINK, CURRENT_LINK, EVALUATIONS_FILE, Registry};

/// A step of the model pipeline. Its [`name`](Self::name) keys the state file and
/// names the step in the run log, so it never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PipelineStep {
    /// Raw data → the refined Parquet files.
    Process,
    /// The refined training files → a new candidate model version.
    Train,
    /// The candidate on the validation set, appended to the evaluation history.
    Evaluate,
    /// The publish gate: the candidate becomes current, or the step fails.
    Publish,
}

impl PipelineStep {
    /// Every step, in run order.
    pub const ALL: [PipelineStep; 4] = [Self::Process, Self::Train, Self::Evaluate, Self::Publish];

    /// The stable name used in the state file, the run log and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Train => "train",
            Self::Evaluate => "evaluate",
            Self::Publish => "publish",
        }
    }

    /// The step this one runs after, if any.
    pub const fn after(self) -> Option<PipelineStep> {
        match self {
            Self::Process => None,
            Self::Train => Some(Self::Process),
            Self::Evaluate => Some(Self::Train),
            Self::Publish => Some(Self::Evaluate),
        }
    }

    /// The step named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for PipelineStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PipelineStep {
    type Err = TrainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_name(s).ok_or_else(|| TrainError::Invalid(format!("unknown step `{s}`")))
    }
}

/// When the pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// One run; a run that does not succeed is [`TrainError::RunFailed`].
    Once,
    /// A run every `every` (from the start of each run), `runs` times or forever. A
    /// failed run is reported and the next one retries the steps that did not succeed.
    Every {
        /// Interval between run starts.
        every: Duration,
        /// How many runs; `None` runs forever.
        runs: Option<usize>,
    },
}

/// Where the model pipeline reads and writes, and its parameters.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Raw data directory (the process step's input).
    pub raw: PathBuf,
    /// Refined data directory.
    pub data: PathBuf,
    /// Models directory; also holds the pipeline's state and run log.
    pub models: PathBuf,
    /// Evaluation cut-off.
    pub k: usize,
    /// Mixing weights of the evaluation (the API's).
    pub weights: MixWeights,
    /// Training parameters.
    pub params: TrainParams,
    /// The publish gate's settings.
    pub publish: PublishSettings,
}

impl PipelineConfig {
    /// The files and directories whose content `step` reads.
    pub fn inputs(&self, step: PipelineStep) -> Vec<PathBuf> {
        match step {
            PipelineStep::Process => vec![self.raw.clone()],
            PipelineStep::Train => vec![
                self.data.join(refined::ITEMS_FILE),
                self.data.join(refined::INTERACTIONS_FILE),
            ],
            PipelineStep::Evaluate => vec![self.data.join(refined::VALIDATION_FILE)],
            PipelineStep::Publish => [
                refined::ITEMS_FILE,
                refined::INTERACTIONS_FILE,
                refined::VALIDATION_FILE,
            ]
            .map(|f| self.data.join(f))
            .to_vec(),
        }
    }

    /// The paths `step` produces; it reruns when one is missing.
    pub fn outputs(&self, step: PipelineStep) -> Vec<PathBuf> {
        match step {
            PipelineStep::Process => vec![
                self.data.join(refined::INTERACTIONS_FILE),
                self.data.join(refined::VALIDATION_FILE),
            ],
            PipelineStep::Train => vec![self.models.join(CANDIDATE_LINK)],
            PipelineStep::Evaluate => vec![self.models.join(EVALUATIONS_FILE)],
            PipelineStep::Publish => vec![self.models.join(CURRENT_LINK)],
        }
    }

    /// The parameters of `step` as they enter its fingerprint.
    pub fn params(&self, step: PipelineStep) -> Result<String, TrainError> {
        Ok(match step {
            PipelineStep::Process => String::new(),
            PipelineStep::Train => serde_json::to_string(&self.params)
                .map_err(|e| TrainError::Invalid(format!("training parameters: {e}")))?,
            PipelineStep::Evaluate => format!("k={}", self.k),
            PipelineStep::Publish => format!("k={} tolerance={}", self.k, self.publish.tolerance),
        })
    }

    /// The graph: every step with its dependencies, inputs, parameters and outputs;
    /// `process` does the process step's work, called with the raw and the refined
    /// directory.
    pub fn graph(
        &self,
        mut process: impl FnMut(&Path, &Path) -> Result<(), StepError> + Send + 'static,
    ) -> Result<Pipeline, TrainError> {
        let registry = Registry::open(&self.models)?;
        let (raw, data) = (self.raw.clone(), self.data.clone());
        let work: [(PipelineStep, StepFn); 4] = [
            (
                PipelineStep::Process,
                Box::new(move || process(&raw, &data)),
            ),
            (PipelineStep::Train, self.train_work()),
            (PipelineStep::Evaluate, self.evaluate_work()),
            (PipelineStep::Publish, self.publish_work()),
        ];
        let mut graph = Pipeline::new(&self.models);
        for (step, run) in work {
            graph = graph.step(self.step(step, run, &registry)?)?;
        }
        Ok(graph)
    }

    fn train_work(&self) -> StepFn {
        let (data, models, params) = (self.data.clone(), self.models.clone(), self.params.clone());
        Box::new(move || {
            train_candidate(&data, &models, &params)?;
            Ok(())
        })
    }

    fn evaluate_work(&self) -> StepFn {
        let (data, models, k, w) = (
            self.data.clone(),
            self.models.clone(),
            self.k,
            self.weights.clone(),
        );
        Box::new(move || {
            let version = candidate(&models)?;
            let (record, _) = evaluate_version(&data, &models, &version, k, &w)?;
            info!(version = %record.version, ndcg = record.report.overall.ndcg, recall = record.report.overall.recall, "evaluated");
            Ok(())
        })
    }

    fn publish_work(&self) -> StepFn {
        let (data, models, k, w, settings) = (
            self.data.clone(),
            self.models.clone(),
            self.k,
            self.weights.clone(),
            self.publish.clone(),
        );
        Box::new(move || {
            let decision = publish(&PublishRequest {
                data: &data,
                models: &models,
                version: None,
                k,
                weights: &w,
                settings: &settings,
            })?;
            if decision.published {
                info!("{}", decision.summary());
            }
            decision.into_result()?;
            Ok(())
        })
    }

    fn step(
        &self,
        step: PipelineStep,
        run: StepFn,
        registry: &Registry,
    ) -> Result<Step, TrainError> {
        let mut s = Step::new(step.name(), run).params(self.params(step)?);
        if let Some(before) = step.after() {
            s = s.after(before.name());
        }
        for input in self.inputs(step) {
            s = s.input(input);
        }
        if matches!(step, PipelineStep::Evaluate | PipelineStep::Publish) {
            let registry = registry.clone();
            s = s.input_value("candidate", move || {
                registry
                    .candidate_version()
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            });
        }
        for output in self.outputs(step) {
            s = s.output(output);
        }
        Ok(s)
    }

    /// Builds the graph and runs it on `schedule`, calling `on_run` with each run's
    /// report. With [`Schedule::Once`], a run that does not succeed is
    /// [`TrainError::RunFailed`] (after `on_run` saw it).
    pub fn run(
        &self,
        schedule: Schedule,
        process: impl FnMut(&Path, &Path) -> Result<(), StepError> + Send + 'static,
        on_run: impl FnMut(&RunReport),
    ) -> Result<(), TrainError> {
        self.run_steps(schedule, &[], process, on_run)
    }

    /// Like [`run`](Self::run), but each run runs only the steps in `only` (all when
    /// empty), as [`Pipeline::run_only`] does: the others count as of their last
    /// success.
    pub fn run_steps(
        &self,
        schedule: Schedule,
        only: &[PipelineStep],
        process: impl FnMut(&Path, &Path) -> Result<(), StepError> + Send + 'static,
        mut on_run: impl FnMut(&RunReport),
    ) -> Result<(), TrainError> {
        let mut graph = self.graph(process)?;
        if !only.is_empty() {
            let names: Vec<&str> = only.iter().map(|s| s.name()).collect();
            return match schedule {
                Schedule::Once => {
                    let report = graph.run_only(&names)?;
                    on_run(&report);
                    if report.ok() {
                        Ok(())
                    } else {
                        Err(TrainError::RunFailed)
                    }
                }
                Schedule::Every { .. } => Err(TrainError::Invalid(
                    "a schedule runs every step; select steps only for a single run".into(),
                )),
            };
        }
        match schedule {
            Schedule::Once => {
                let report = graph.run_once()?;
                on_run(&report);
                if report.ok() {
                    Ok(())
                } else {
                    Err(TrainError::RunFailed)
                }
            }
            Schedule::Every { every, runs } => graph.run_every(every, runs, on_run),
        }
    }
}

/// The candidate version of `models`, or an error naming what to run first.
fn candidate(models: &Path) -> Result<String, StepError> {
    Registry::open(models)?.candidate_version()?.ok_or_else(|| {
        format!(
            "no candidate version in {}: run the train step first",
            models.display()
        )
        .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::Fingerprint;
    use crate::pipeline::StepStatus;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn config(dir: &Path) -> PipelineConfig {
        PipelineConfig {
            raw: dir.join("raw"),
            data: dir.join("refined"),
            models: dir.join("models"),
            k: 10,
            weights: MixWeights::default(),
            params: TrainParams::default(),
            publish: PublishSettings::default(),
        }
    }

    #[test]
    fn step_names_are_stable_and_ordered() {
        let names: Vec<&str> = PipelineStep::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["process", "train", "evaluate", "publish"]);
        for s in PipelineStep::ALL {
            assert_eq!(s.to_string().parse::<PipelineStep>().ok(), Some(s));
            if let Some(a) = s.after() {
                assert!(a < s, "{s} runs after a later step");
            }
        }
        assert!("data".parse::<PipelineStep>().is_err());
    }

    #[test]
    fn a_failed_process_step_blocks_the_rest_and_fails_a_single_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = config(dir.path());
        std::fs::create_dir_all(&c.raw).expect("raw");
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let mut reports = Vec::new();
        let r = c.run(
            Schedule::Once,
            move |raw, out| {
                seen.fetch_add(1, Ordering::SeqCst);
                Err(format!("{} -> {}: boom", raw.display(), out.display()).into())
            },
            |r| reports.push(r.clone()),
        );
        assert!(matches!(r, Err(TrainError::RunFailed)));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let r = &reports[0];
        let names: Vec<&str> = r.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["process", "train", "evaluate", "publish"]);
        assert!(r.steps[1..].iter().all(|s| s.status == StepStatus::Blocked));
        let summary = r.summary();
        assert!(summary.starts_with("pipeline run "), "{summary}");
        assert!(summary.contains("process failed"), "{summary}");
        assert!(summary.ends_with("boom"), "{summary}");
        assert_eq!(
            Pipeline::history(&c.models).expect("runs").len(),
            1,
            "the run is logged in the models directory"
        );
    }

    #[test]
    fn process_fingerprint_covers_its_name_and_raw_input() {
        // The fingerprint of the first step, as the graph computes it, depends only on
        // the step name, its (empty) parameters and the raw directory: state files
        // written before the graph moved here still match.
        let dir = tempfile::tempdir().expect("tempdir");
        let c = config(dir.path());
        std::fs::create_dir_all(&c.raw).expect("raw");
        std::fs::write(c.raw.join("a.csv"), "x").expect("write");
        let mut report = None;
        c.run(
            Schedule::Once,
            |_, _| Err("stop".into()),
            |r| report = Some(r.clone()),
        )
        .ok();
        let mut h = Fingerprint::new();
        h.update_str("process");
        h.update_str("");
        h.update_str(&c.raw.to_string_lossy());
        h.update_path(&c.raw).expect("hash");
        let report = report.expect("report");
        assert_eq!(report.steps[0].fingerprint, h.finish());
    }
}
