//! A small graph of idempotent steps (process → train → evaluate) that skips a step
//! whose inputs did not change, logs every run with timings, and repeats on a schedule.
//!
//! A step declares its inputs (paths, hashed by content, and values computed when the
//! run starts, such as the current model version), its parameters and its outputs. Its
//! fingerprint is the hash of all of these plus the fingerprints of the steps it runs
//! after; a step runs when that fingerprint differs from the one recorded after its
//! last success, or when an output is missing. Steps are closures, so this crate does
//! not depend on the crates whose work they call.
//!
//! `steps` declares newsrec's own graph on top of this: [`PipelineStep`] and
//! [`PipelineConfig`].

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{error, info, info_span};

use crate::error::TrainError;
use crate::fingerprint::Fingerprint;

mod status;
pub(crate) mod steps;

pub use status::PipelineStatus;
pub use steps::{PipelineConfig, PipelineStep, Schedule};

/// The error a step's work returns; it is rendered into the run log.
pub type StepError = Box<dyn std::error::Error + Send + Sync>;
/// The work of a step; the error is rendered into the run log.
pub type StepFn = Box<dyn FnMut() -> Result<(), StepError> + Send>;
type ValueFn = Box<dyn Fn() -> String + Send>;

/// State file (last successful fingerprint per step) inside the pipeline directory.
pub const STATE_FILE: &str = "pipeline-state.json";
/// Run log (JSON lines) inside the pipeline directory.
pub const RUNS_FILE: &str = "pipeline-runs.jsonl";

/// One node of the graph.
pub struct Step {
    name: String,
    after: Vec<String>,
    inputs: Vec<PathBuf>,
    values: Vec<(String, ValueFn)>,
    params: String,
    outputs: Vec<PathBuf>,
    run: StepFn,
}

impl Step {
    /// A step named `name` doing `run`.
    pub fn new(
        name: impl Into<String>,
        run: impl FnMut() -> Result<(), StepError> + Send + 'static,
    ) -> Self {
        Self {
            name: name.into(),
            after: Vec::new(),
            inputs: Vec::new(),
            values: Vec::new(),
            params: String::new(),
            outputs: Vec::new(),
            run: Box::new(run),
        }
    }

    /// A file or directory whose content the step reads.
    pub fn input(mut self, path: impl Into<PathBuf>) -> Self {
        self.inputs.push(path.into());
        self
    }

    /// A value the step depends on, computed when the step is considered (after its
    /// upstream steps ran), e.g. the current model version.
    pub fn input_value(
        mut self,
        name: impl Into<String>,
        f: impl Fn() -> String + Send + 'static,
    ) -> Self {
        self.values.push((name.into(), Box::new(f)));
        self
    }

    /// The step's parameters, in any stable rendering (e.g. JSON).
    pub fn params(mut self, params: impl Into<String>) -> Self {
        self.params = params.into();
        self
    }

    /// A path the step produces; the step reruns if it is missing.
    pub fn output(mut self, path: impl Into<PathBuf>) -> Self {
        self.outputs.push(path.into());
        self
    }

    /// Runs only after `step` (which must be declared earlier) succeeded or was skipped.
    pub fn after(mut self, step: impl Into<String>) -> Self {
        self.after.push(step.into());
        self
    }
}

impl Step {
    /// The step's fingerprint: its name, parameters, its upstream steps' fingerprints
    /// in this run, its input paths' content and its input values.
    fn fingerprint(
        &self,
        done: &HashMap<String, (StepStatus, String)>,
    ) -> Result<String, TrainError> {
        let mut h = Fingerprint::new();
        h.update_str(&self.name);
        h.update_str(&self.params);
        for a in &self.after {
            h.update_str(done.get(a).map(|d| d.1.as_str()).unwrap_or_default());
        }
        for p in &self.inputs {
            h.update_str(&p.to_string_lossy());
            h.update_path(p)?;
        }
        for (name, f) in &self.values {
            h.update_str(name);
            h.update_str(&f());
        }
        Ok(h.finish())
    }
}

/// What happened to a step in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Inputs changed (or outputs were missing): the step ran and succeeded.
    Ran,
    /// Inputs unchanged since the last success.
    Skipped,
    /// The step ran and failed.
    Failed,
    /// An upstream step failed.
    Blocked,
}

/// One step's line in a run report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// Step name.
    pub name: String,
    /// What happened.
    pub status: StepStatus,
    /// Time spent, including fingerprinting, milliseconds.
    pub ms: u64,
    /// The step's fingerprint in this run.
    pub fingerprint: String,
    /// The failure, when `status` is `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One pipeline run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// When the run started (wall clock, RFC 3339).
    pub started: String,
    /// Total time, milliseconds.
    pub ms: u64,
    /// Each step, in order.
    pub steps: Vec<StepOutcome>,
}

impl RunReport {
    /// Whether every step ran or was skipped.
    pub fn ok(&self) -> bool {
        self.steps
            .iter()
            .all(|s| matches!(s.status, StepStatus::Ran | StepStatus::Skipped))
    }

    /// The run in a few lines for a terminal: the run, then each step's status and
    /// time, then one line per failed step with its error. No trailing newline.
    pub fn summary(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                format!("{} {:?} {:.1}s", s.name, s.status, s.ms as f64 / 1000.0).to_lowercase()
            })
            .collect();
        let mut out = format!(
            "pipeline run {}: {} ({:.1} s)",
            self.started,
            steps.join(", "),
            self.ms as f64 / 1000.0
        );
        for s in self.steps.iter().filter(|s| s.error.is_some()) {
            out.push_str(&format!(
                "\n  {} failed: {}",
                s.name,
                s.error.as_deref().unwrap_or_default()
            ));
        }
        out
    }
}

/// The graph and where it keeps its state.
pub struct Pipeline {
    dir: PathBuf,
    steps: Vec<Step>,
}

impl Pipeline {
    /// A pipeline keeping its state and run log in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            steps: Vec::new(),
        }
    }

    /// Adds a step (after the ones it depends on).
    pub fn step(mut self, step: Step) -> Result<Self, TrainError> {
        if self.steps.iter().any(|s| s.name == step.name) {
            return Err(TrainError::Invalid(format!(
                "duplicate step `{}`",
                step.name
            )));
        }
        for a in &step.after {
            if !self.steps.iter().any(|s| &s.name == a) {
                return Err(TrainError::Invalid(format!(
                    "step `{}` runs after unknown step `{a}`",
                    step.name
                )));
            }
        }
        self.steps.push(step);
        Ok(self)
    }

    fn load_state(&self) -> HashMap<String, String> {
        fs::read_to_string(self.dir.join(STATE_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    fn save_state(&self, state: &HashMap<String, String>) -> Result<(), TrainError> {
        let path = self.dir.join(STATE_FILE);
        let sorted: BTreeMap<_, _> = state.iter().collect();
        let text = serde_json::to_string_pretty(&sorted)
            .map_err(|e| TrainError::artifact(&path, e.to_string()))?;
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, text).map_err(|e| TrainError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| TrainError::io(&path, e))
    }

    /// Runs the graph once: each step runs, is skipped, or is blocked by a failed
    /// upstream step. The run is appended to the run log.
    pub fn run_once(&mut self) -> Result<RunReport, TrainError> {
        self.run_selected(None)
    }

    /// Runs only the steps named in `only`, in graph order. A step upstream of them that
    /// is not selected counts as of its last success (its recorded fingerprint; empty if
    /// it never succeeded here, e.g. when its work was done by hand): the selected
    /// steps check their own inputs. This is how a scheduler that runs each step as its
    /// own task (Airflow), in order, keeps the fingerprints.
    pub fn run_only(&mut self, only: &[&str]) -> Result<RunReport, TrainError> {
        for name in only {
            if !self.steps.iter().any(|s| s.name == *name) {
                return Err(TrainError::Invalid(format!("unknown step `{name}`")));
            }
        }
        let only: Vec<String> = only.iter().map(|s| (*s).to_owned()).collect();
        self.run_selected(Some(&only))
    }

    fn run_selected(&mut self, only: Option<&[String]>) -> Result<RunReport, TrainError> {
        let _span = info_span!("pipeline").entered();
        fs::create_dir_all(&self.dir).map_err(|e| TrainError::io(&self.dir, e))?;
        let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let started = Instant::now();
        let mut state = self.load_state();
        let mut done: HashMap<String, (StepStatus, String)> = HashMap::new();
        let mut outcomes = Vec::new();
        for step in &mut self.steps {
            if only.is_some_and(|o| !o.contains(&step.name)) {
                let recorded = state.get(&step.name).cloned().unwrap_or_default();
                done.insert(step.name.clone(), (StepStatus::Skipped, recorded));
                continue;
            }
            let t = Instant::now();
            let blocked = step.after.iter().any(|a| {
                done.get(a)
                    .is_none_or(|(s, _)| matches!(s, StepStatus::Failed | StepStatus::Blocked))
            });
            if blocked {
                outcomes.push(StepOutcome {
                    name: step.name.clone(),
                    status: StepStatus::Blocked,
                    ms: 0,
                    fingerprint: String::new(),
                    error: None,
                });
                done.insert(step.name.clone(), (StepStatus::Blocked, String::new()));
                continue;
            }
            let fp = step.fingerprint(&done)?;
            let outputs_present = step.outputs.iter().all(|o| o.exists());
            let (status, err) = if outputs_present && state.get(&step.name) == Some(&fp) {
                info!(step = %step.name, "inputs unchanged: skipped");
                (StepStatus::Skipped, None)
            } else {
                info!(step = %step.name, "running");
                match (step.run)() {
                    Ok(()) => {
                        state.insert(step.name.clone(), fp.clone());
                        self_save(&self.dir, &state)?;
                        (StepStatus::Ran, None)
                    }
                    Err(e) => {
                        error!(step = %step.name, error = %e, "step failed");
                        (StepStatus::Failed, Some(e.to_string()))
                    }
                }
            };
            let ms = t.elapsed().as_millis() as u64;
            info!(step = %step.name, ?status, ms, "step finished");
            done.insert(step.name.clone(), (status, fp.clone()));
            outcomes.push(StepOutcome {
                name: step.name.clone(),
                status,
                ms,
                fingerprint: fp,
                error: err,
            });
        }
        let report = RunReport {
            started: started_at,
            ms: started.elapsed().as_millis() as u64,
            steps: outcomes,
        };
        crate::registry::append_json_line(&self.dir.join(RUNS_FILE), &report)?;
        Ok(report)
    }

    /// Runs the graph every `every` (measured from the start of each run), `runs` times
    /// or forever when `None`. A failed run is logged and the schedule continues: the
    /// next run retries exactly the steps that did not succeed.
    pub fn run_every(
        &mut self,
        every: Duration,
        runs: Option<usize>,
        mut on_run: impl FnMut(&RunReport),
    ) -> Result<(), TrainError> {
        let mut n = 0usize;
        loop {
            let t = Instant::now();
            let report = self.run_once()?;
            on_run(&report);
            n += 1;
            if runs.is_some_and(|r| n >= r) {
                return Ok(());
            }
            let wait = every.saturating_sub(t.elapsed());
            info!(next_in_s = wait.as_secs(), "waiting for the next run");
            std::thread::sleep(wait);
        }
    }

    /// The run log, oldest first.
    pub fn history(dir: &Path) -> Result<Vec<RunReport>, TrainError> {
        crate::registry::read_json_lines(&dir.join(RUNS_FILE))
    }
}

// Saved after every successful step, so a crash mid-run does not redo finished steps.
fn self_save(dir: &Path, state: &HashMap<String, String>) -> Result<(), TrainError> {
    Pipeline {
        dir: dir.to_path_buf(),
        steps: Vec::new(),
    }
    .save_state(state)
}

/// Parses a schedule interval: a number followed by `s`, `m`, `h` or `d` (`30m`, `6h`).
pub fn parse_interval(s: &str) -> Result<Duration, TrainError> {
    let s = s.trim();
    let bad = || TrainError::Invalid(format!("interval `{s}`: expected e.g. 45s, 30m, 6h, 1d"));
    let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(unit_at);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting(
        counter: &Arc<AtomicUsize>,
        out: PathBuf,
        fail: bool,
    ) -> impl FnMut() -> Result<(), Box<dyn std::error::Error + Send + Sync>> + Send + 'static {
        let c = Arc::clone(counter);
        move || {
            c.fetch_add(1, Ordering::SeqCst);
            if fail {
                return Err("boom".into());
            }
            fs::write(&out, "x")?;
            Ok(())
        }
    }

    #[test]
    fn skips_unchanged_steps_and_reruns_downstream_of_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("raw.csv");
        fs::write(&input, "a").expect("write");
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (out_a, out_b) = (dir.path().join("a.out"), dir.path().join("b.out"));
        let mut p = Pipeline::new(dir.path().join("state"))
            .step(
                Step::new("process", counting(&a, out_a.clone(), false))
                    .input(&input)
                    .output(&out_a),
            )
            .and_then(|p| {
                p.step(
                    Step::new("train", counting(&b, out_b.clone(), false))
                        .after("process")
                        .input(&out_a)
                        .params("f=8")
                        .output(&out_b),
                )
            })
            .expect("graph");
        let r1 = p.run_once().expect("run");
        assert!(r1.ok());
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (1, 1));
        let r2 = p.run_once().expect("run");
        assert!(r2.steps.iter().all(|s| s.status == StepStatus::Skipped));
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (1, 1));
        fs::write(&input, "b").expect("write");
        p.run_once().expect("run");
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (2, 2));
        fs::remove_file(&out_b).expect("rm");
        let r4 = p.run_once().expect("run");
        assert_eq!(r4.steps[0].status, StepStatus::Skipped);
        assert_eq!(
            r4.steps[1].status,
            StepStatus::Ran,
            "a missing output reruns the step"
        );
        assert_eq!(
            Pipeline::history(&dir.path().join("state"))
                .expect("log")
                .len(),
            4
        );
    }

    #[test]
    fn failure_blocks_downstream_and_is_retried() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let mut p = Pipeline::new(dir.path())
            .step(Step::new(
                "process",
                counting(&a, dir.path().join("a"), true),
            ))
            .and_then(|p| {
                p.step(
                    Step::new("train", counting(&b, dir.path().join("b"), false)).after("process"),
                )
            })
            .expect("graph");
        let r = p.run_once().expect("run");
        assert!(!r.ok());
        assert_eq!(r.steps[0].status, StepStatus::Failed);
        assert_eq!(r.steps[0].error.as_deref(), Some("boom"));
        assert_eq!(r.steps[1].status, StepStatus::Blocked);
        p.run_once().expect("run");
        assert_eq!(a.load(Ordering::SeqCst), 2, "a failed step is retried");
        assert_eq!(b.load(Ordering::SeqCst), 0);
        assert!(
            Pipeline::new(dir.path())
                .step(Step::new("x", || Ok(())))
                .and_then(|p| p.step(Step::new("x", || Ok(()))))
                .is_err()
        );
    }

    #[test]
    fn a_partial_run_uses_the_recorded_upstream_and_keeps_fingerprints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("raw.csv");
        fs::write(&input, "a").expect("write");
        let (a, b) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (out_a, out_b) = (dir.path().join("a.out"), dir.path().join("b.out"));
        let graph = || {
            Pipeline::new(dir.path().join("state"))
                .step(
                    Step::new("process", counting(&a, out_a.clone(), false))
                        .input(&input)
                        .output(&out_a),
                )
                .and_then(|p| {
                    p.step(
                        Step::new("train", counting(&b, out_b.clone(), false))
                            .after("process")
                            .output(&out_b),
                    )
                })
                .expect("graph")
        };
        // train alone before process ever succeeded here: it runs on what it finds.
        let r = graph().run_only(&["train"]).expect("run");
        assert_eq!(r.steps.len(), 1, "only the selected step is reported");
        assert_eq!(r.steps[0].status, StepStatus::Ran);
        // One step per run, as separate tasks do; then the same steps are skipped.
        assert_eq!(
            graph().run_only(&["process"]).expect("run").steps[0].status,
            StepStatus::Ran
        );
        assert_eq!(
            graph().run_only(&["train"]).expect("run").steps[0].status,
            StepStatus::Ran,
            "process's recorded fingerprint is new to train"
        );
        assert!(
            graph()
                .run_once()
                .expect("run")
                .steps
                .iter()
                .all(|s| s.status == StepStatus::Skipped)
        );
        assert_eq!(
            graph().run_only(&["train"]).expect("run").steps[0].status,
            StepStatus::Skipped
        );
        // New input: process reruns, and then train sees process's new fingerprint.
        fs::write(&input, "b").expect("write");
        graph().run_only(&["process"]).expect("run");
        assert_eq!(
            graph().run_only(&["train"]).expect("run").steps[0].status,
            StepStatus::Ran
        );
        assert_eq!((a.load(Ordering::SeqCst), b.load(Ordering::SeqCst)), (2, 3));
        assert!(graph().run_only(&["nope"]).is_err());
    }

    #[test]
    fn intervals_parse() {
        assert_eq!(parse_interval("30m").ok(), Some(Duration::from_secs(1800)));
        assert_eq!(parse_interval("6h").ok(), Some(Duration::from_secs(21_600)));
        assert_eq!(parse_interval("1d").ok(), Some(Duration::from_secs(86_400)));
        for bad in ["", "h", "6", "6x", "0s", "-1h"] {
            assert!(parse_interval(bad).is_err(), "{bad}");
        }
    }
}
