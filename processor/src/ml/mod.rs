//! Streaming machine learning with MLlib's semantics: learners whose model is state, updated once per batch
//! and checkpointed in the job's changelog like every other store, so a model trained by a job killed and
//! restarted is the model of a failure-free run.
//!
//! - [`StreamingKMeans`]: MLlib's `StreamingKMeans` (decay per batch or per point, the dying-cluster split).
//! - [`StreamingLinearRegressionWithSGD`] and [`StreamingLogisticRegressionWithSGD`]: mini-batch SGD warm
//!   started from the current weights every batch, as MLlib's `StreamingLinearAlgorithm` does.
//!
//! `learner.train_on(&points)` gives a [`Trained`] model whose `predict_on` / `predict_on_values` streams
//! use the model as updated by the same batch. A task trains its own model: to train one model on every
//! partition's points, gather them first ([`crate::StreamingContext::gather`]).
//!
//! One deliberate difference from MLlib: a batch without points leaves a model unchanged (MLlib's k-means
//! decays its weights on empty batches too). Batches here are cut by time, so how many empty ones pass
//! between two batches of data depends on when the job ran; counting only batches with data keeps the model
//! a function of the input.

mod kmeans;
mod point;
mod regression;
mod rng;
mod sgd;
mod stream;

pub use kmeans::{KMeansModel, StreamingKMeans, TimeUnit};
pub use point::{parse_labeled_point, parse_vector, LabeledPoint, Vector};
pub use regression::{
    LinearModel, StreamingLinearRegressionWithSGD, StreamingLogisticRegressionWithSGD,
};
pub use stream::{StreamingLearner, Trained};

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::ModelFileError;

/// Writes a model as JSON (what [`load_model`] and the shipped jobs' `model` options read).
pub fn save_model<M: Serialize>(model: &M, path: &Path) -> Result<(), ModelFileError> {
    let text = serde_json::to_vec_pretty(model).map_err(ModelFileError::Encode)?;
    std::fs::write(path, text).map_err(|error| ModelFileError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Reads a model [`save_model`] wrote.
pub fn load_model<M: DeserializeOwned>(path: &Path) -> Result<M, ModelFileError> {
    let text = std::fs::read(path).map_err(|error| ModelFileError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    serde_json::from_slice(&text).map_err(|error| ModelFileError::Decode {
        path: path.to_path_buf(),
        error,
    })
}
