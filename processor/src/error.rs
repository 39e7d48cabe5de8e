//! The processor's errors: building a job ([`ProcessorError`]), configuring a shipped job
//! ([`JobConfigError`]), reading and writing keys and values ([`CodecError`]), checkpointing state
//! ([`StateError`]), running output operations ([`OutputError`]), reading the changelog back
//! ([`ChangelogError`]) and running a task ([`TaskError`]). How a running job fails is
//! `runtime::JobError`, which wraps these.
//!
//! Messages are complete on their own: an inner error a message already shows is not also given as its
//! `source`, so a printed chain does not repeat it.

use std::path::PathBuf;

use crate::runtime::task::TaskId;

/// An error from a user's function (a custom codec, a `foreach_batch` action).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors found while building a job.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProcessorError {
    /// Window length and slide must be whole multiples of the batch interval (as in Spark Streaming).
    #[error("{what} of {value_ms} ms is not a positive multiple of the batch interval ({interval_ms} ms)")]
    NotAMultiple {
        what: &'static str,
        value_ms: u64,
        interval_ms: u64,
    },
}

/// A shipped job's settings or options are wrong (`jobs::configure` and each job's `build`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobConfigError {
    #[error("no job named {job} (jobs: {known})")]
    UnknownJob { job: String, known: String },
    #[error("{key}={value}: expected a whole number")]
    NotANumber { key: String, value: String },
    #[error("{key}={value}: expected a number")]
    NotADecimal { key: String, value: String },
    #[error("time.unit={0}: expected batches or points")]
    TimeUnit(String),
    #[error(transparent)]
    ModelFile(crate::error::ModelFileError),
    #[error("{key}={value}: expected true or false")]
    NotABool { key: String, value: String },
    #[error("start.from={0}: expected earliest or latest")]
    StartFrom(String),
    #[error("job {0} needs input and output topics")]
    NoTopics(String),
    #[error("this job needs the option {0}")]
    MissingOption(String),
    #[error("option {name}={value} is not a number of milliseconds")]
    NotMilliseconds { name: String, value: String },
    #[error("option {0} is empty")]
    EmptyOption(&'static str),
    /// A number outside what the option allows (`allowed`, e.g. "in (0, 1]").
    #[error("{key}={value}: must be {allowed}")]
    OutOfRange {
        key: String,
        value: String,
        allowed: &'static str,
    },
    #[error("this job needs exactly one of the options table (a file) and table.topic")]
    TableSource,
    /// A file an option names (`what`: table, model) cannot be read.
    #[error("cannot read {what} {}: {error}", .path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("model {} is not a JSON array of centroids: {error}", .path.display())]
    BadModel {
        path: PathBuf,
        error: serde_json::Error,
    },
    #[error("model {} has no centroids", .0.display())]
    EmptyModel(PathBuf),
}

/// A model file that cannot be written or read back (`ml::save_model`, `ml::load_model`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelFileError {
    #[error("cannot encode the model: {0}")]
    Encode(serde_json::Error),
    #[error("cannot access model file {}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("model file {} is not a model: {error}", .path.display())]
    Decode {
        path: PathBuf,
        error: serde_json::Error,
    },
}

/// A key or value that cannot be decoded or encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// Kafka's null where the codec needs bytes (`expected`: what it reads).
    #[error("null where {0} was expected")]
    Null(&'static str),
    #[error("not UTF-8: {0}")]
    NotUtf8(std::str::Utf8Error),
    #[error("invalid JSON: {0}")]
    InvalidJson(serde_json::Error),
    #[error("cannot write JSON: {0}")]
    WriteJson(serde_json::Error),
    /// From a codec outside this crate.
    #[error("{0}")]
    Other(BoxError),
}

/// A stateful operator's store cannot be checkpointed or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("cannot serialize state: {0}")]
    Serialize(serde_json::Error),
    #[error("cannot read checkpointed state: {0}")]
    Deserialize(serde_json::Error),
}

/// An output operation failed for a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    #[error(transparent)]
    Encode(#[from] CodecError),
    #[error("cannot write {}: {error}", .dir.display())]
    Write { dir: PathBuf, error: std::io::Error },
    /// The job's `foreach_batch` function failed.
    #[error("{0}")]
    Batch(BoxError),
}

/// A changelog partition holds a record the runtime cannot read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChangelogError {
    #[error("unreadable checkpoint record: {0}")]
    Checkpoint(serde_json::Error),
    /// A key that names no store (shown as lossy UTF-8).
    #[error("unreadable changelog key {0:?}")]
    Key(String),
}

/// A task cannot be restored or cannot compute a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Output(#[from] OutputError),
    /// The task's checkpoint and the group's committed offset disagree.
    #[error("task {task}: the checkpoint of batch {batch} ends {topic}/{partition} at offset {checkpointed} but the group's committed offset is {committed}; the offsets were changed outside the job (delete the job's changelog topic and group to start over)")]
    OffsetsChanged {
        task: TaskId,
        batch: u64,
        topic: String,
        partition: i32,
        checkpointed: i64,
        committed: i64,
    },
    #[error("task {task}: no start offset for {topic}/{partition}")]
    NoStartOffset {
        task: TaskId,
        topic: String,
        partition: i32,
    },
    #[error("cannot write checkpoint: {0}")]
    Checkpoint(serde_json::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs;

    /// The typed errors print what the `String` errors they replaced said.
    #[test]
    fn messages_are_the_ones_the_string_errors_gave() {
        let task = TaskId {
            stage: 1,
            partition: 2,
        };
        let cases: Vec<(String, &str)> = vec![
            (
                JobConfigError::UnknownJob {
                    job: "x".into(),
                    known: "a, b".into(),
                }
                .to_string(),
                "no job named x (jobs: a, b)",
            ),
            (
                JobConfigError::Read {
                    what: "model",
                    path: "/m.json".into(),
                    error: std::io::Error::other("gone"),
                }
                .to_string(),
                "cannot read model /m.json: gone",
            ),
            (
                JobConfigError::EmptyModel("/m.json".into()).to_string(),
                "model /m.json has no centroids",
            ),
            (
                JobConfigError::EmptyOption("pattern").to_string(),
                "option pattern is empty",
            ),
            (
                CodecError::Null("UTF-8 text").to_string(),
                "null where UTF-8 text was expected",
            ),
            (
                OutputError::Write {
                    dir: "/out".into(),
                    error: std::io::Error::other("full"),
                }
                .to_string(),
                "cannot write /out: full",
            ),
            (
                ChangelogError::Key(String::from_utf8_lossy(b"s0/x").into_owned()).to_string(),
                "unreadable changelog key \"s0/x\"",
            ),
            (
                TaskError::NoStartOffset {
                    task,
                    topic: "in".into(),
                    partition: 2,
                }
                .to_string(),
                "task s1-p2: no start offset for in/2",
            ),
            (
                TaskError::OffsetsChanged {
                    task,
                    batch: 6,
                    topic: "in".into(),
                    partition: 2,
                    checkpointed: 10,
                    committed: 12,
                }
                .to_string(),
                "task s1-p2: the checkpoint of batch 6 ends in/2 at offset 10 but the group's committed offset is 12; the offsets were changed outside the job (delete the job's changelog topic and group to start over)",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let settings = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let err = |kv: &[(&str, &str)]| {
            jobs::configure("wordcount", &settings(kv))
                .err()
                .map(|e| e.to_string())
        };
        let io = [("input", "i"), ("output", "o")];
        assert_eq!(
            err(&[("input", "i")]).as_deref(),
            Some("job wordcount needs input and output topics")
        );
        assert_eq!(
            err(&[io[0], io[1], ("max.batches", "x")]).as_deref(),
            Some("max.batches=x: expected a whole number")
        );
        assert_eq!(
            err(&[io[0], io[1], ("backpressure", "x")]).as_deref(),
            Some("backpressure=x: expected true or false")
        );
        assert_eq!(
            err(&[io[0], io[1], ("start.from", "x")]).as_deref(),
            Some("start.from=x: expected earliest or latest")
        );
        let grep = jobs::configure("grep", &settings(&io)).err();
        assert_eq!(
            grep.map(|e| e.to_string()).as_deref(),
            Some("this job needs the option pattern")
        );
        let window = jobs::configure(
            "hashtags-window",
            &settings(&[io[0], io[1], ("window.ms", "1m")]),
        )
        .err();
        assert_eq!(
            window.map(|e| e.to_string()).as_deref(),
            Some("option window.ms=1m is not a number of milliseconds")
        );
        let join = jobs::configure("join", &settings(&io)).err();
        assert!(matches!(join, Some(JobConfigError::TableSource)));
    }
}
