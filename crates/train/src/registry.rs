//! Versioned model directories, the `current` pointer and the evaluation history.
//!
//! ```text
//! models/
//!   current -> 20221116-101500-123     symlink, replaced by rename (atomic)
//!   candidate -> 20221116-121500-456   the latest version trained without being made
//!                                      current (`train --candidate`, the pipeline)
//!   20221116-101500-123/
//!     manifest.json                    version, created, data range, parameters, metrics
//!     model.bin                        every tier's arrays
//!   evaluations.jsonl                  one line per evaluation run
//!   publish.jsonl                      one line per publish-gate decision
//! ```
//!
//! A version directory is staged under a temporary name and renamed into place
//! complete, then `current` is switched by renaming a fresh symlink over it: a reader
//! sees the old model or the new one, never half of either. Detecting a new model is
//! one `readlink`.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::evaluate::EvaluationReport;
use crate::fit::TrainParams;
use crate::model_set::ModelSet;

/// Manifest file inside a version directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The pointer to the serving version.
pub const CURRENT_LINK: &str = "current";
/// The pointer to the latest version trained as a candidate (not yet, or never, made
/// current by the publish gate).
pub const CANDIDATE_LINK: &str = "candidate";
/// Evaluation history (JSON lines) in the models directory.
pub const EVALUATIONS_FILE: &str = "evaluations.jsonl";

/// Event-time range of the training data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRange {
    /// First event (epoch ms).
    pub first_ts: i64,
    /// Last event (epoch ms); the models' "now".
    pub last_ts: i64,
    /// `first_ts` as RFC 3339.
    pub first: String,
    /// `last_ts` as RFC 3339.
    pub last: String,
}

/// Row counts of the inputs and of what was trained.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RowCounts {
    /// Training interactions read.
    pub interactions: u64,
    /// Training users.
    pub users: u64,
    /// Users of the logged tier (stored ALS factors).
    pub logged_users: u64,
    /// Users of the semi-logged tier (clustered).
    pub semi_logged_users: u64,
    /// Articles in the catalogue.
    pub items: u64,
    /// Users in the ALS matrix (every user with an interaction).
    pub cf_users: u64,
    /// Articles with ALS factors.
    pub cf_items: u64,
    /// Articles in the serving pool.
    pub pool_items: u64,
    /// Distinct terms of the content model.
    pub vocabulary: u64,
    /// Behaviour clusters.
    pub clusters: u64,
    /// Size of `model.bin`.
    pub model_bytes: u64,
}

/// What a version directory is: written at training time, metrics added by
/// evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version name (also the directory name).
    pub version: String,
    /// Artifact format number.
    pub format: u32,
    /// When the model was built (wall clock, RFC 3339).
    pub created: String,
    /// Event-time range of the training data.
    pub data: DataRange,
    /// Content fingerprint of the training inputs.
    pub data_fingerprint: String,
    /// Every training parameter.
    pub params: TrainParams,
    /// Row counts.
    pub rows: RowCounts,
    /// Duration of each training stage, milliseconds.
    pub timings_ms: BTreeMap<String, u64>,
    /// The latest evaluation of this version.
    #[serde(default)]
    pub metrics: Option<EvaluationReport>,
    /// When `metrics` were computed (wall clock, RFC 3339).
    #[serde(default)]
    pub evaluated: Option<String>,
}

impl Manifest {
    /// Reads a manifest file.
    pub fn read(path: &Path) -> Result<Self, TrainError> {
        let text = fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| TrainError::artifact(path, e.to_string()))
    }

    /// Writes the manifest to `path` atomically (temporary file + rename).
    pub(crate) fn write(&self, path: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| TrainError::artifact(path, e.to_string()))?;
        write_atomic(path, text.as_bytes())
    }
}

/// One line of the evaluation history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationRecord {
    /// The evaluated version.
    pub version: String,
    /// When (wall clock, RFC 3339).
    pub evaluated: String,
    /// The metrics.
    pub report: EvaluationReport,
    /// Content fingerprint of the validation data it was scored on (absent in records
    /// written before it was kept): the publish gate compares two versions only on
    /// the same data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<String>,
}

/// Appends `value` as one JSON line to `path` (created when missing): the history files
/// (`evaluations.jsonl`, the pipeline's runs).
pub(crate) fn append_json_line(path: &Path, value: &impl Serialize) -> Result<(), TrainError> {
    let line =
        serde_json::to_string(value).map_err(|e| TrainError::artifact(path, e.to_string()))?;
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| TrainError::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| TrainError::io(path, e))
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = fs::File::create(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| TrainError::io(&tmp, e))?;
    f.sync_all().map_err(|e| TrainError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// The models directory.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
}

impl Registry {
    /// Opens (and creates if needed) a models directory.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, TrainError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| TrainError::io(&root, e))?;
        Ok(Self { root })
    }

    /// The models directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a version.
    pub fn version_dir(&self, version: &str) -> PathBuf {
        self.root.join(version)
    }

    /// The serving version, from one `readlink`: cheap enough to poll every second.
    pub fn current_version(&self) -> Result<Option<String>, TrainError> {
        self.link_target(CURRENT_LINK)
    }

    /// The latest candidate version, if one was trained.
    pub fn candidate_version(&self) -> Result<Option<String>, TrainError> {
        self.link_target(CANDIDATE_LINK)
    }

    fn link_target(&self, name: &str) -> Result<Option<String>, TrainError> {
        let link = self.root.join(name);
        match fs::read_link(&link) {
            Ok(target) => Ok(target.file_name().map(|n| n.to_string_lossy().into_owned())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(TrainError::io(&link, e)),
        }
    }

    /// Loads the serving version.
    pub fn load_current(&self) -> Result<ModelSet, TrainError> {
        let version = self
            .current_version()?
            .ok_or_else(|| TrainError::NoModel(self.root.clone()))?;
        self.load(&version)
    }

    /// Loads one version.
    pub fn load(&self, version: &str) -> Result<ModelSet, TrainError> {
        ModelSet::load(&self.version_dir(version))
    }

    /// The manifest of one version.
    pub fn manifest(&self, version: &str) -> Result<Manifest, TrainError> {
        Manifest::read(&self.version_dir(version).join(MANIFEST_FILE))
    }

    /// Manifests of every complete version, oldest first.
    pub fn versions(&self) -> Result<Vec<Manifest>, TrainError> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(|e| TrainError::io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| TrainError::io(&self.root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with('.')
                || name == CURRENT_LINK
                || name == CANDIDATE_LINK
                || !path.is_dir()
            {
                continue;
            }
            if path.join(MANIFEST_FILE).is_file() {
                out.push(Manifest::read(&path.join(MANIFEST_FILE))?);
            }
        }
        out.sort_by(|a, b| a.version.cmp(&b.version));
        Ok(out)
    }

    /// Points `current` at `version` atomically.
    pub fn set_current(&self, version: &str) -> Result<(), TrainError> {
        self.point(CURRENT_LINK, version)
    }

    /// Points `candidate` at `version` atomically.
    pub fn set_candidate(&self, version: &str) -> Result<(), TrainError> {
        self.point(CANDIDATE_LINK, version)
    }

    fn point(&self, link: &str, version: &str) -> Result<(), TrainError> {
        let dir = self.version_dir(version);
        if !dir.join(MANIFEST_FILE).is_file() {
            return Err(TrainError::artifact(&dir, "not a complete model version"));
        }
        let tmp = self.root.join(format!(".{link}-{}", std::process::id()));
        let _ = fs::remove_file(&tmp);
        symlink(Path::new(version), &tmp).map_err(|e| TrainError::io(&tmp, e))?;
        fs::rename(&tmp, self.root.join(link)).map_err(|e| TrainError::io(&self.root, e))
    }

    /// A fresh, unique version name from the wall clock (sortable).
    pub(crate) fn new_version(&self) -> String {
        let now = chrono::Utc::now();
        let base = now.format("%Y%m%d-%H%M%S-%3f").to_string();
        let mut v = base.clone();
        let mut n = 1;
        while self.version_dir(&v).exists() {
            v = format!("{base}-{n}");
            n += 1;
        }
        v
    }

    /// A staging directory for a version being built; renamed into place by
    /// [`Registry::install`].
    pub(crate) fn stage(&self, version: &str) -> Result<PathBuf, TrainError> {
        let dir = self.root.join(format!(".staging-{version}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
        Ok(dir)
    }

    /// Writes the manifest into the staged directory, moves it into place and points
    /// `link` ([`CURRENT_LINK`] or [`CANDIDATE_LINK`]) at it.
    pub(crate) fn install(
        &self,
        staged: &Path,
        manifest: &Manifest,
        link: &str,
    ) -> Result<PathBuf, TrainError> {
        manifest.write(&staged.join(MANIFEST_FILE))?;
        let dir = self.version_dir(&manifest.version);
        fs::rename(staged, &dir).map_err(|e| TrainError::io(&dir, e))?;
        self.point(link, &manifest.version)?;
        Ok(dir)
    }

    /// Appends an evaluation to the history and stores its metrics in the version's
    /// manifest.
    pub fn record_evaluation(&self, record: &EvaluationRecord) -> Result<(), TrainError> {
        append_json_line(&self.root.join(EVALUATIONS_FILE), record)?;
        let mpath = self.version_dir(&record.version).join(MANIFEST_FILE);
        let mut m = Manifest::read(&mpath)?;
        m.metrics = Some(record.report);
        m.evaluated = Some(record.evaluated.clone());
        m.write(&mpath)
    }

    /// The evaluation history, oldest first (lines that do not parse are skipped: a
    /// run killed mid-write leaves at most one).
    pub fn evaluations(&self) -> Result<Vec<EvaluationRecord>, TrainError> {
        read_json_lines(&self.root.join(EVALUATIONS_FILE))
    }
}

/// Every line of a JSON-lines history file that parses, oldest first; a missing file
/// is an empty history.
pub(crate) fn read_json_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Vec<T>, TrainError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(TrainError::io(path, e)),
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_dir(target, link)
}
