//! Batch models per user tier, model registry and offline evaluation.
