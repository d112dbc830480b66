//! Batch models for newsrec's three user tiers, their registry and their offline
//! evaluation, and the shared recommend path the API serves.
//!
//! - **logged**: implicit-feedback ALS on engagement-weighted interactions, blended at
//!   serving time with TF-IDF content similarity (Portuguese tokenisation) and recency;
//!   users unknown to the model are folded in from their live history.
//! - **semi-logged**: the shared user feature vector → scaling → PCA → KMeans (linfa);
//!   each cluster has a list ranked by popularity within the cluster × recency; any user
//!   is placed from live features.
//! - **anonymous**: popularity × recency as of the end of the training data.
//!
//! [`ModelSet::recommend`] routes with [`newsrec_core::route_tier`], mixes the tier's
//! candidates with live signals, excludes read pages and fills a short tier from the
//! next; the API and [`Evaluator`] both call it.
//!
//! # Layout
//! - `text`: Portuguese tokenizer (accent folding, stop words).
//! - `content`: TF-IDF vectors, profiles and precomputed content neighbours.
//! - `als`: sparse matrices, implicit ALS (conjugate gradient), fold-in (Cholesky).
//! - `factorization`: [`factorization::fit`] and [`factorization::fold_in`] for
//!   callers that build their own matrices.
//! - `cluster`: scaler → PCA → KMeans, placement of any user.
//! - `dataset`: reading the refined Parquet files into indexed arrays.
//! - `fit`: [`TrainParams`] and [`train`], which builds every tier in named stages
//!   (popularity, serving pool, content, CF, clusters, read-next, fill order) and
//!   publishes a version.
//! - `model_set`: [`ModelSet`], what a version holds, lookups and offline signals.
//! - `recommend`: [`UserContext`], [`LiveSignals`], [`MixWeights`] and the recommend
//!   path.
//! - `registry`: versions, the atomic `current` and `candidate` switches, manifests,
//!   evaluation history.
//! - `publish`: the publish gate ([`Gate`], [`publish`]): a candidate becomes current
//!   only when its NDCG@K, overall and per tier, is within [`PublishSettings`]'
//!   tolerance of the current model's; every decision is logged.
//! - `evaluate`: metrics, baselines, [`Evaluator`].
//! - `holdout`: the time holdout inside the training data ([`HoldoutSettings`]).
//! - `ranker`: [`Ranker`], each tier's mixing weights fitted on that holdout at train
//!   time ([`RankerParams`]); [`Ranking`] chooses learned or hand-set weights.
//! - `pipeline`: idempotent step graph with content fingerprints and a schedule.
//!   - `pipeline::steps`: the model pipeline on it: [`PipelineStep`] (process → train
//!     → evaluate → publish), [`PipelineConfig`] (each step's inputs, parameters, outputs and
//!     work) and [`Schedule`].
//! - `fingerprint`: the streaming content hash.
//! - `progress`: progress bars or log lines for long work.
//! - `error`: [`TrainError`].

mod als;
mod cluster;
mod content;
mod dataset;
mod error;
mod evaluate;
mod fingerprint;
mod fit;
mod heap;
mod holdout;
mod model_set;
mod pipeline;
mod progress;
mod publish;
mod ranker;
mod recommend;
mod registry;
mod text;

pub use als::{AlsModel, AlsParams, Csr, Factors};
pub use cluster::{ClusterParams, Clusterer};
pub use content::{ContentModel, ContentParams, ItemText, Profile};
pub use dataset::{
    Interactions, ItemRecord, TrainingData, UserRecord, ValidationRow, read_training,
    read_validation,
};
pub use error::TrainError;
pub use evaluate::{
    Baselines, EvalUser, EvaluateSettings, EvaluationReport, Evaluator, Metrics, NamedReports,
    SystemMetrics, TierMetrics, UserScore, ablation_variants, evaluate, evaluate_version,
    evaluate_version_with, evaluation_data_fingerprint, score_list,
};
pub use fingerprint::{Fingerprint, fingerprint_paths};
pub use fit::{TrainParams, train, train_candidate};
pub use holdout::HoldoutSettings;
pub use model_set::{Item, MODEL_FILE, ModelSet};
pub use pipeline::{
    Pipeline, PipelineConfig, PipelineStatus, PipelineStep, RUNS_FILE, RunReport, STATE_FILE,
    Schedule, Step, StepError, StepFn, StepOutcome, StepStatus, parse_interval,
};
pub use publish::{
    Gate, GateCheck, GateDecision, PUBLISH_FILE, PublishRequest, PublishSettings, decisions,
    publish,
};
pub use ranker::{RANKER_FILE, Ranker, RankerParams, TierRanker};
pub use recommend::{
    HAND, LiveSignals, MixWeights, Ranking, Reason, Recommendations, Recommended, TopList,
    UserContext,
};
pub use registry::{
    CANDIDATE_LINK, CURRENT_LINK, DataRange, EVALUATIONS_FILE, EvaluationRecord, MANIFEST_FILE,
    Manifest, Registry, RowCounts,
};
pub use text::{is_stop_word, tokenize};

/// ALS fitting and fold-in, for callers that build their own matrices.
pub mod factorization {
    pub use crate::als::{fit, fold_in};
}
