//! The storage crate's error type. Kafka error codes are decided by the broker; these say what went wrong
//! on disk or in a batch so the broker can pick the code a real Kafka broker would send.

use std::io;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    /// A record batch failed validation (length, magic, CRC-32C, record count).
    #[error("corrupt record batch: {0}")]
    CorruptBatch(String),
    /// The record set cannot be read as v2 batches at all (no batch, a length past the end, an old magic).
    #[error("invalid record set: {0}")]
    InvalidRecord(String),
    /// A batch is larger than the topic's `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes {limit}")]
    BatchTooLarge { size: usize, limit: usize },
    /// Records without a key were sent to a compacted topic; `records` are their indexes in the batch
    /// (Kafka's per-record errors, KIP-467).
    #[error("Compacted topic cannot accept message without key in topic partition")]
    MissingKey { records: Vec<i32> },
    /// A batch's records decompress to more than the broker's cap.
    #[error("record batch decompresses to more than {0} bytes")]
    DecompressedTooLarge(usize),
    #[error("offset {offset} out of range [{start}, {end})")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),
    #[error("topic already exists: {0}")]
    TopicExists(String),
    #[error("invalid config {key}={value}: {reason}")]
    InvalidConfig {
        key: String,
        value: String,
        reason: String,
    },
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("catalog is corrupt: {0}")]
    CorruptCatalog(String),
    /// An idempotent producer's batch does not follow its last sequence.
    #[error("out of order sequence: expected {expected}, got {got}")]
    OutOfOrderSequence { expected: i32, got: i32 },
    /// A batch carries an older producer epoch than the partition has seen.
    #[error("producer epoch {got} is older than the current epoch")]
    StaleProducerEpoch { got: i16 },
    /// A previous fsync failed: data may not be on disk, so the log refuses writes instead of pretending.
    #[error("log is poisoned after a failed flush")]
    Poisoned,
    /// The log was closed (broker shutdown): nothing may be appended after the clean-shutdown marker.
    #[error("log is closed")]
    Closed,
    /// A broker or request limit was reached (partitions per request, partitions per broker).
    #[error("{0}")]
    PolicyViolation(String),
    /// The shared storage of cluster mode (object store or metadata database) did not take or give the
    /// data; nothing was written. Retriable.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A data file is not what the log recorded about it (found and repaired when a log opens).
    #[error("corrupt log file {path}: {reason}")]
    CorruptFile { path: String, reason: String },
}

pub type Result<T> = std::result::Result<T, StorageError>;

/// Attaches the path to an `io::Error`, so a failure names the file it happened on.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| StorageError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}
