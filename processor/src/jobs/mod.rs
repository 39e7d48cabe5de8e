//! The example jobs shipped in the `runnel` binary (`runnel jobs run NAME`, `runnel serve --job NAME:ARGS`)
//! and as Rust examples: the seed talk's examples plus WordCount and Grep.

mod grep;
mod hashtags;
mod join;
mod kmeans;
mod ml_train;
mod mood;
mod wordcount;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::JobConfigError;
use crate::runtime::JobFn;

/// What a job is given: its topics and its own options.
#[derive(Debug, Clone, Default)]
pub struct JobArgs {
    pub input: String,
    pub output: String,
    /// Job options (`pattern` for grep, `table` for join, `model` for kmeans, `window.ms`/`slide.ms`).
    pub options: BTreeMap<String, String>,
}

impl JobArgs {
    fn option(&self, name: &str) -> Result<&str, JobConfigError> {
        self.options
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| JobConfigError::MissingOption(name.to_string()))
    }

    fn path(&self, name: &str) -> Result<PathBuf, JobConfigError> {
        self.option(name).map(PathBuf::from)
    }

    fn whole(&self, name: &str, default: u64) -> Result<u64, JobConfigError> {
        match self.options.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| JobConfigError::NotANumber {
                key: name.to_string(),
                value: v.clone(),
            }),
        }
    }

    fn decimal(&self, name: &str, default: f64) -> Result<f64, JobConfigError> {
        match self.options.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| JobConfigError::NotADecimal {
                    key: name.to_string(),
                    value: v.clone(),
                }),
        }
    }

    /// [`Self::decimal`], refused unless `ok` holds (`allowed` says what does, for the error).
    fn decimal_where(
        &self,
        name: &str,
        default: f64,
        ok: fn(f64) -> bool,
        allowed: &'static str,
    ) -> Result<f64, JobConfigError> {
        let x = self.decimal(name, default)?;
        if ok(x) {
            Ok(x)
        } else {
            Err(JobConfigError::OutOfRange {
                key: name.to_string(),
                value: self.options.get(name).cloned().unwrap_or_default(),
                allowed,
            })
        }
    }

    /// [`Self::whole`], refused when zero.
    fn positive(&self, name: &str, default: u64) -> Result<u64, JobConfigError> {
        match self.whole(name, default)? {
            0 => Err(JobConfigError::OutOfRange {
                key: name.to_string(),
                value: "0".to_string(),
                allowed: "at least 1",
            }),
            n => Ok(n),
        }
    }

    fn ms(&self, name: &str, default: u64) -> Result<u64, JobConfigError> {
        match self.options.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| JobConfigError::NotMilliseconds {
                name: name.to_string(),
                value: v.clone(),
            }),
        }
    }
}

pub struct JobSpec {
    pub name: &'static str,
    pub about: &'static str,
    pub build: fn(&JobArgs) -> Result<JobFn, JobConfigError>,
}

pub const JOBS: &[JobSpec] = &[
    JobSpec {
        name: "wordcount",
        about: "running count of every word (key = word, value = total as decimal text), as Kafka Streams' WordCount",
        build: wordcount::build,
    },
    JobSpec {
        name: "grep",
        about: "records whose value contains option pattern, unchanged",
        build: grep::build,
    },
    JobSpec {
        name: "hashtags",
        about: "hashtag counts per batch from JSON tweets {\"user\", \"text\"} (flat_map + count_by_value)",
        build: hashtags::build,
    },
    JobSpec {
        name: "hashtags-window",
        about: "hashtag counts over a sliding window (options window.ms, default 60000, slide.ms, default 5000)",
        build: hashtags::build_windowed,
    },
    JobSpec {
        name: "mood",
        about: "per-user mood from JSON tweets, kept with update_state_by_key (value = JSON score and tweets)",
        build: mood::build,
    },
    JobSpec {
        name: "join",
        about: "records joined by key with a static dataset (option table: a file of key,value lines, or table.topic)",
        build: join::build,
    },
    JobSpec {
        name: "kmeans",
        about: "assigns each point (\"x,y,...\") to the nearest centre of a model (option model: a file with a JSON array of centres or a saved model; or model.topic: follow the latest model kmeans-train writes)",
        build: kmeans::build,
    },
    JobSpec {
        name: "kmeans-train",
        about: "streaming k-means (MLlib's): trains on the input's points, writes the model to model.topic, predicts option predict's points (options k, decay or half.life, time.unit, centers, dim, seed)",
        build: ml_train::build_kmeans,
    },
    JobSpec {
        name: "linear-train",
        about: "streaming linear regression with SGD (MLlib's): trains on labelled points, predicts option predict's (options step.size, iterations, mini.batch.fraction, initial.weights, model)",
        build: ml_train::build_linear,
    },
    JobSpec {
        name: "logistic-train",
        about: "streaming logistic regression with SGD (MLlib's): as linear-train, labels 0 or 1, plus reg.param (L2)",
        build: ml_train::build_logistic,
    },
];

pub fn find(name: &str) -> Option<&'static JobSpec> {
    JOBS.iter().find(|j| j.name == name)
}

/// The settings that configure how any job runs (the rest are the job's own options).
pub const RUN_SETTINGS: &[(&str, &str)] = &[
    ("input", "source topic (required)"),
    ("output", "output topic (required)"),
    (
        "name",
        "the job's name: its group and internal topics' prefix (default: the job)",
    ),
    (
        "instance.id",
        "this instance's id, distinct per instance of one job (default 0)",
    ),
    ("interval.ms", "batch interval (default 1000)"),
    (
        "max.rate.per.partition",
        "records per second per partition (default unbounded)",
    ),
    (
        "backpressure",
        "true: size batches to the rate the job keeps up with (default false)",
    ),
    (
        "start.from",
        "earliest or latest, without a checkpoint or committed offset (default earliest)",
    ),
    (
        "dead.letter.topic",
        "topic for records that cannot be read (default: fail the job)",
    ),
    ("max.batches", "stop after this many batches"),
    (
        "stop.when.idle",
        "N (or true = 1): stop after N rounds in a row with no input",
    ),
];

/// A job and how to run it, from `key=value` settings (what `serve --job NAME:k=v,...` and `jobs run`
/// give).
pub fn configure(
    job: &str,
    settings: &BTreeMap<String, String>,
) -> Result<(crate::runtime::JobConfig, JobFn), JobConfigError> {
    use crate::runtime::{BadRecords, JobConfig, StartFrom};
    let spec = find(job).ok_or_else(|| {
        let names: Vec<&str> = JOBS.iter().map(|j| j.name).collect();
        JobConfigError::UnknownJob {
            job: job.to_string(),
            known: names.join(", "),
        }
    })?;
    let mut args = JobArgs::default();
    let mut config = JobConfig::new(job);
    let number = |k: &str, v: &str| -> Result<u64, JobConfigError> {
        v.parse().map_err(|_| JobConfigError::NotANumber {
            key: k.to_string(),
            value: v.to_string(),
        })
    };
    let flag = |k: &str, v: &str| -> Result<bool, JobConfigError> {
        v.parse().map_err(|_| JobConfigError::NotABool {
            key: k.to_string(),
            value: v.to_string(),
        })
    };
    for (k, v) in settings {
        match k.as_str() {
            "input" => args.input = v.clone(),
            "output" => args.output = v.clone(),
            "name" => config.name = v.clone(),
            "instance.id" => config.instance = v.clone(),
            "interval.ms" => {
                config.interval = std::time::Duration::from_millis(number(k, v)?.max(1))
            }
            "max.rate.per.partition" => config.max_rate_per_partition = Some(number(k, v)?),
            "backpressure" => config.backpressure = flag(k, v)?,
            "start.from" => {
                config.start_from = match v.as_str() {
                    "earliest" => StartFrom::Earliest,
                    "latest" => StartFrom::Latest,
                    _ => return Err(JobConfigError::StartFrom(v.clone())),
                }
            }
            "dead.letter.topic" => config.bad_records = BadRecords::DeadLetter(v.clone()),
            "max.batches" => config.max_batches = Some(number(k, v)?),
            "stop.when.idle" => {
                config.stop_when_idle = match v.as_str() {
                    "true" => Some(1),
                    "false" => None,
                    n => Some(number(k, n)?),
                }
            }
            _ => {
                args.options.insert(k.clone(), v.clone());
            }
        }
    }
    if args.input.is_empty() || args.output.is_empty() {
        return Err(JobConfigError::NoTopics(job.to_string()));
    }
    let build = (spec.build)(&args)?;
    Ok((config, build))
}
