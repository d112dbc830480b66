//! The crate's error type.

use std::path::PathBuf;

use newsrec_core::Retryable;

/// Why training, loading a model, evaluating or a pipeline step failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A Parquet file could not be read or written.
    #[error("{path}: {source}")]
    Parquet {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: polars::error::PolarsError,
    },
    /// A column is missing, has the wrong type or holds an invalid value.
    #[error("{path}: column `{column}`: {reason}")]
    Column {
        /// The file involved.
        path: PathBuf,
        /// The column name.
        column: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A model artifact is unreadable or from an incompatible format.
    #[error("model artifact {path}: {reason}")]
    Artifact {
        /// The file involved.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The models directory has no `current` model yet.
    #[error("no current model in {0}")]
    NoModel(PathBuf),
    /// The input cannot train a model (for example, no interactions at all).
    #[error("cannot train: {0}")]
    NoData(String),
    /// A parameter is out of range.
    #[error("invalid parameter: {0}")]
    Invalid(String),
    /// A linfa estimator failed to fit.
    #[error("fitting {what}: {reason}")]
    Fit {
        /// Which estimator.
        what: &'static str,
        /// The estimator's message.
        reason: String,
    },
    /// A pipeline step failed; the message is the step's own error.
    #[error("pipeline step `{step}` failed: {reason}")]
    Step {
        /// The step name.
        step: String,
        /// The step's error, rendered.
        reason: String,
    },
    /// A single pipeline run did not succeed; its report says which steps failed.
    #[error("pipeline run failed")]
    RunFailed,
    /// The publish gate refused the candidate; the message holds the figures.
    #[error("{0}")]
    PublishRefused(String),
}

impl TrainError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn artifact(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        TrainError::Artifact {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl Retryable for TrainError {
    /// File-system errors can be transient while `current` is being switched or a disk
    /// is briefly full; everything else is a property of the data or the code.
    fn is_retryable(&self) -> bool {
        match self {
            TrainError::Io { source, .. } => !matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::InvalidData
            ),
            TrainError::NoModel(_) => true,
            _ => false,
        }
    }
}
