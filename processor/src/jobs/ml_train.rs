//! Jobs that train a model on one topic and predict on another, as MLlib's streaming examples do: the points
//! of every input partition are gathered into one task, which updates the model with each batch's training
//! points, writes the model to the model topic (option `model.topic`, default `<output>-model`; key
//! `model`, value the model as JSON) whenever it changed, and predicts the points of option `predict` with
//! the model as trained on the same batch (output key = the point's key, value = the prediction as text).
//! Training points are labelled points (`(label,[x,y])` or `label,x,y`) for regression, vectors (`[x,y]` or
//! `x,y`) for k-means; points that do not parse are skipped.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{Json, Raw, Utf8};
use crate::error::JobConfigError;
use crate::jobs::JobArgs;
use crate::ml::{
    self, LabeledPoint, LinearModel, StreamingKMeans, StreamingLearner,
    StreamingLinearRegressionWithSGD, StreamingLogisticRegressionWithSGD, TimeUnit,
};
use crate::runtime::JobFn;

/// What goes to the training task: a point to learn from, or one to predict (with its key).
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Item<P> {
    Train(P),
    Predict(Option<String>, Vec<f64>),
}

/// The job for a learner whose training points `parse` reads from text.
fn train_and_predict<L>(
    args: &JobArgs,
    learner: L,
    parse: fn(&str) -> Option<L::Point>,
) -> Result<JobFn, JobConfigError>
where
    L: StreamingLearner + Clone,
    L::Point: Serialize + DeserializeOwned,
    L::Prediction: ToString,
{
    let args = args.clone();
    let model_topic = args
        .options
        .get("model.topic")
        .cloned()
        .unwrap_or_else(|| format!("{}-model", args.output));
    let predict = args.options.get("predict").cloned();
    Ok(Arc::new(move |ctx| {
        let train = ctx
            .topic(&args.input, Utf8, Utf8)
            .flat_map(move |r| parse(&r.value).map(Item::<L::Point>::Train));
        let items =
            match &predict {
                Some(topic) => train.union(&ctx.topic(topic, Utf8, Utf8).flat_map(|r| {
                    ml::parse_vector(&r.value).map(|v| Item::Predict(r.key.clone(), v))
                })),
                None => train,
            };
        let gathered = ctx.gather(&items, "points", Json);
        let points = gathered.flat_map(|i| match i {
            Item::Train(p) => Some(p.clone()),
            Item::Predict(..) => None,
        });
        let trained = learner.clone().train_on(&points);
        let models = trained.updates().map(|m| ("model".to_string(), m.clone()));
        ctx.to_topic(&models, &model_topic, Utf8, Json);
        let to_predict = gathered.flat_map(|i| match i {
            Item::Predict(k, v) => Some((k.clone(), v.clone())),
            Item::Train(_) => None,
        });
        let predictions = trained
            .predict_on_values(&to_predict)
            .map(|(k, p)| (k.clone().map(Bytes::from), Bytes::from(p.to_string())));
        ctx.to_topic::<Option<Bytes>, Bytes>(&predictions, &args.output, Raw, Raw);
        Ok(())
    }))
}

fn model_file<M: DeserializeOwned>(
    args: &JobArgs,
    name: &str,
) -> Result<Option<M>, JobConfigError> {
    match args.options.get(name) {
        None => Ok(None),
        Some(p) => ml::load_model(std::path::Path::new(p))
            .map(Some)
            .map_err(JobConfigError::ModelFile),
    }
}

pub fn build_kmeans(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let mut km = StreamingKMeans::new(args.positive("k", 2)? as usize);
    let unit = match args.options.get("time.unit").map(String::as_str) {
        None | Some("batches") => TimeUnit::Batches,
        Some("points") => TimeUnit::Points,
        Some(other) => return Err(JobConfigError::TimeUnit(other.to_string())),
    };
    km = match args.options.get("half.life") {
        Some(_) => km.half_life(
            args.decimal_where("half.life", 1.0, |h| h > 0.0, "above 0")?,
            unit,
        ),
        None => km
            .decay_factor(args.decimal_where(
                "decay",
                1.0,
                |d| (0.0..=1.0).contains(&d),
                "in [0, 1]",
            )?)
            .time_unit(unit),
    };
    let centres = match args.options.get("centers") {
        Some(_) => Some(super::kmeans::centres_file(args, "centers")?),
        None => None,
    };
    km = match centres {
        Some(m) => km.initial_model(m),
        None if args.options.contains_key("dim") => km.random_centers(
            args.positive("dim", 2)? as usize,
            args.decimal_where("weight", 0.0, |w| w >= 0.0, "at least 0")?,
            args.whole("seed", 42)?,
        ),
        None => km,
    };
    train_and_predict(args, km, ml::parse_vector)
}

macro_rules! sgd_options {
    ($args:expr, $learner:expr) => {{
        let mut l = $learner
            .step_size($args.decimal_where("step.size", 0.1, |s| s > 0.0, "above 0")?)
            .num_iterations($args.positive("iterations", 50)?.min(u32::MAX as u64) as u32)
            .mini_batch_fraction($args.decimal_where(
                "mini.batch.fraction",
                1.0,
                |f| f > 0.0 && f <= 1.0,
                "in (0, 1]",
            )?)
            .convergence_tol($args.decimal_where(
                "convergence.tol",
                0.001,
                |t| (0.0..=1.0).contains(&t),
                "in [0, 1]",
            )?);
        if let Some(m) = model_file::<LinearModel>($args, "model")? {
            l = l.initial_model(m);
        } else if let Some(w) = $args.options.get("initial.weights") {
            let w = ml::parse_vector(w).ok_or_else(|| JobConfigError::NotADecimal {
                key: "initial.weights".into(),
                value: w.clone(),
            })?;
            l = l.initial_weights(w);
        }
        l
    }};
}

pub fn build_linear(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let l = sgd_options!(args, StreamingLinearRegressionWithSGD::new());
    train_and_predict(args, l, parse_labeled)
}

pub fn build_logistic(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let l = sgd_options!(args, StreamingLogisticRegressionWithSGD::new())
        .reg_param(args.decimal_where("reg.param", 0.0, |r| r >= 0.0, "at least 0")?);
    train_and_predict(args, l, parse_labeled)
}

fn parse_labeled(text: &str) -> Option<LabeledPoint> {
    ml::parse_labeled_point(text)
}
