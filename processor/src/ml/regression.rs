//! MLlib's `StreamingLinearRegressionWithSGD` and `StreamingLogisticRegressionWithSGD`: every batch with
//! points runs mini-batch SGD over it from the current weights (least squares with the simple updater;
//! logistic loss with the squared-L2 updater). No intercept, as MLlib's streaming learners have none;
//! add a constant feature for one. Without initial weights the model starts at zeros of the first
//! point's dimension.

use serde::{Deserialize, Serialize};

use super::point::LabeledPoint;
use super::sgd::{self, Gradient, SgdSettings, Updater};
use super::stream::StreamingLearner;
use crate::batch::BatchInfo;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    pub weights: Vec<f64>,
    #[serde(default)]
    pub intercept: f64,
    /// Batches with points this model was trained on.
    #[serde(default)]
    pub batches: u64,
    #[serde(default)]
    pub points: u64,
}

impl LinearModel {
    pub fn new(weights: Vec<f64>) -> Self {
        LinearModel {
            weights,
            intercept: 0.0,
            batches: 0,
            points: 0,
        }
    }

    pub fn margin(&self, features: &[f64]) -> Option<f64> {
        (features.len() == self.weights.len())
            .then(|| sgd::dot(&self.weights, features) + self.intercept)
    }

    /// The model after one batch of SGD over the points of its dimension (None when there are none). The
    /// samples are seeded by the number of batches trained so far, which a restarted job has restored.
    fn trained(
        mut self,
        points: &[LabeledPoint],
        gradient: Gradient,
        updater: Updater,
        s: &SgdSettings,
    ) -> Option<Self> {
        let usable: Vec<LabeledPoint> = points
            .iter()
            .filter(|p| p.features.len() == self.weights.len())
            .filter(|p| gradient != Gradient::Logistic || p.label == 0.0 || p.label == 1.0)
            .cloned()
            .collect();
        if usable.is_empty() {
            return None;
        }
        if usable.len() < points.len() {
            tracing::warn!(
                skipped = points.len() - usable.len(),
                "points of another dimension (or, for logistic regression, a label other than 0 or 1) skipped"
            );
        }
        let w = std::mem::take(&mut self.weights);
        self.weights = sgd::run(&usable, w, gradient, updater, s, self.batches);
        self.batches += 1;
        self.points += usable.len() as u64;
        Some(self)
    }
}

fn mllib_defaults() -> SgdSettings {
    SgdSettings {
        step_size: 0.1,
        iterations: 50,
        mini_batch_fraction: 1.0,
        reg_param: 0.0,
        convergence_tol: 0.001,
    }
}

macro_rules! sgd_builders {
    () => {
        pub fn step_size(mut self, v: f64) -> Self {
            self.settings.step_size = v;
            self
        }
        pub fn num_iterations(mut self, v: u32) -> Self {
            self.settings.iterations = v;
            self
        }
        pub fn mini_batch_fraction(mut self, v: f64) -> Self {
            self.settings.mini_batch_fraction = v;
            self
        }
        pub fn convergence_tol(mut self, v: f64) -> Self {
            self.settings.convergence_tol = v;
            self
        }
        pub fn initial_weights(mut self, w: Vec<f64>) -> Self {
            self.initial = Some(LinearModel::new(w));
            self
        }
        pub fn initial_model(mut self, m: LinearModel) -> Self {
            self.initial = Some(m);
            self
        }
        fn start(&self, points: &[LabeledPoint]) -> Option<LinearModel> {
            self.initial
                .clone()
                .or_else(|| points.first().map(|p| LinearModel::new(vec![0.0; p.features.len()])))
        }
    };
}

/// Step size 0.1, 50 iterations, mini-batch fraction 1.0, convergence tolerance 0.001 (MLlib's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingLinearRegressionWithSGD {
    pub settings: SgdSettings,
    pub initial: Option<LinearModel>,
}

impl Default for StreamingLinearRegressionWithSGD {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamingLinearRegressionWithSGD {
    pub fn new() -> Self {
        StreamingLinearRegressionWithSGD {
            settings: mllib_defaults(),
            initial: None,
        }
    }
    sgd_builders!();
}

impl StreamingLearner for StreamingLinearRegressionWithSGD {
    type Point = LabeledPoint;
    type Model = LinearModel;
    type Prediction = f64;

    fn train(
        &self,
        model: Option<&LinearModel>,
        points: &[LabeledPoint],
        _: &BatchInfo,
    ) -> Option<LinearModel> {
        let start = model.cloned().or_else(|| self.start(points))?;
        start.trained(
            points,
            Gradient::LeastSquares,
            Updater::Simple,
            &self.settings,
        )
    }

    fn predict(&self, model: &LinearModel, features: &[f64]) -> Option<f64> {
        model.margin(features)
    }
}

/// As the linear learner, plus `reg_param` (L2, default 0.0) and the 0.5 threshold predictions use.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingLogisticRegressionWithSGD {
    pub settings: SgdSettings,
    pub initial: Option<LinearModel>,
    pub threshold: f64,
}

impl Default for StreamingLogisticRegressionWithSGD {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamingLogisticRegressionWithSGD {
    pub fn new() -> Self {
        StreamingLogisticRegressionWithSGD {
            settings: mllib_defaults(),
            initial: None,
            threshold: 0.5,
        }
    }
    sgd_builders!();
    pub fn reg_param(mut self, v: f64) -> Self {
        self.settings.reg_param = v;
        self
    }
}

impl StreamingLearner for StreamingLogisticRegressionWithSGD {
    type Point = LabeledPoint;
    type Model = LinearModel;
    type Prediction = f64;

    fn train(
        &self,
        model: Option<&LinearModel>,
        points: &[LabeledPoint],
        _: &BatchInfo,
    ) -> Option<LinearModel> {
        let start = model.cloned().or_else(|| self.start(points))?;
        start.trained(
            points,
            Gradient::Logistic,
            Updater::SquaredL2,
            &self.settings,
        )
    }

    /// 1.0 when the probability σ(w·x) is above the threshold, else 0.0.
    fn predict(&self, model: &LinearModel, features: &[f64]) -> Option<f64> {
        let p = 1.0 / (1.0 + (-model.margin(features)?).exp());
        Some(if p > self.threshold { 1.0 } else { 0.0 })
    }
}
