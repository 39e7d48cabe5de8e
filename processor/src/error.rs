//! Errors found while building a job.

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
