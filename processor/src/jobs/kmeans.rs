//! A model trained offline applied to each event (the talk's "learn models offline, apply them online"):
//! points (`x,y,...` or `[x,y,...]`) are assigned to the nearest centre of a k-means model. The model is a
//! file (option `model`: a JSON array of centres, or a model `ml::save_model` or `kmeans-train` wrote) or
//! the latest model on a topic (option `model.topic`: the value of key `model`, as `kmeans-train` writes
//! it), followed while the job runs so a retrained model applies from the next batch on without a restart;
//! points that arrive before the topic holds a model are skipped. Output: key = the cluster's index,
//! value = the point as it came.

use std::sync::{Arc, Mutex};

use crate::codec::Utf8;
use crate::context::{Followed, Table};
use crate::error::JobConfigError;
use crate::jobs::JobArgs;
use crate::ml::{self, KMeansModel};
use crate::runtime::JobFn;
use crate::state::lock;

/// A model file: a bare array of centres (weights do not matter for predicting) or a whole model.
fn read_model(text: &str) -> Result<KMeansModel, serde_json::Error> {
    serde_json::from_str::<KMeansModel>(text).or_else(|_| {
        serde_json::from_str::<Vec<Vec<f64>>>(text).map(|c| {
            let k = c.len();
            KMeansModel::new(c, vec![0.0; k])
        })
    })
}

/// The centres in the file option `name` names, refused when it has none.
pub(crate) fn centres_file(args: &JobArgs, name: &str) -> Result<KMeansModel, JobConfigError> {
    let path = args.path(name)?;
    let text = std::fs::read_to_string(&path).map_err(|error| JobConfigError::Read {
        what: "model",
        path: path.clone(),
        error,
    })?;
    let model = read_model(&text).map_err(|error| JobConfigError::BadModel {
        path: path.clone(),
        error,
    })?;
    if model.centers.is_empty() {
        return Err(JobConfigError::EmptyModel(path));
    }
    Ok(model)
}

enum ModelSource {
    File(Arc<KMeansModel>),
    Topic(String),
}

/// The table last seen on the model topic and the model parsed from it.
#[derive(Default)]
struct Parsed {
    table: Option<Arc<Table>>,
    model: Option<Arc<KMeansModel>>,
}

/// The model a followed topic holds, parsed once per table it publishes.
struct FollowedModel {
    table: Arc<Followed>,
    parsed: Mutex<Parsed>,
}

impl FollowedModel {
    fn current(&self) -> Option<Arc<KMeansModel>> {
        let table = self.table.latest();
        let mut p = lock(&self.parsed);
        if !p.table.as_ref().is_some_and(|t| Arc::ptr_eq(t, &table)) {
            let model = table.get("model").and_then(|t| match read_model(t) {
                Ok(m) if !m.centers.is_empty() => Some(Arc::new(m)),
                _ => {
                    tracing::warn!("the model topic's latest model is not a k-means model; keeping the previous one");
                    p.model.clone()
                }
            });
            *p = Parsed {
                table: Some(table),
                model,
            };
        }
        p.model.clone()
    }
}

pub fn build(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let source = match (args.options.get("model"), args.options.get("model.topic")) {
        (Some(_), None) => {
            let model = centres_file(args, "model")?;
            ModelSource::File(Arc::new(model))
        }
        (None, Some(topic)) => ModelSource::Topic(topic.clone()),
        _ => {
            return Err(JobConfigError::MissingOption(
                "model or model.topic".to_string(),
            ))
        }
    };
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let model: Arc<dyn Fn() -> Option<Arc<KMeansModel>> + Send + Sync> = match &source {
            ModelSource::File(m) => {
                let m = Arc::clone(m);
                Arc::new(move || Some(Arc::clone(&m)))
            }
            ModelSource::Topic(t) => {
                let followed = FollowedModel {
                    table: ctx.follow(t),
                    parsed: Mutex::new(Parsed::default()),
                };
                Arc::new(move || followed.current())
            }
        };
        let assigned = ctx
            .topic(&args.input, Utf8, Utf8)
            .transform(move |_, records| {
                let Some(m) = model() else {
                    return Vec::new();
                };
                records
                    .iter()
                    .filter_map(|r| {
                        ml::parse_vector(&r.value)
                            .and_then(|p| m.predict(&p))
                            .map(|i| (i.to_string(), r.value.clone()))
                    })
                    .collect()
            });
        ctx.to_topic(&assigned, &args.output, Utf8, Utf8);
        Ok(())
    }))
}
