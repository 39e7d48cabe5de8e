//! How a job runs: its name (the consumer group, the transactional id's prefix and the prefix of its
//! internal topics), the batch interval, rate limits and what to do with records that cannot be read.

use std::time::Duration;

/// Where a job starts when it has neither a checkpoint nor committed offsets (auto.offset.reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    Earliest,
    Latest,
}

/// What happens to a record whose key or value cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadRecords {
    /// Stop the job with a message naming the record and the reason (as Kafka Streams' LogAndFail).
    Fail,
    /// Send it, unchanged, to this topic with the reason in the `runnel.error` header.
    DeadLetter(String),
}

#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The job's name: its consumer group, and the prefix of its internal topics.
    pub name: String,
    /// Tells instances of one job apart: the transactional id is `<name>-<instance>` and the group
    /// membership is static under this id, so a restarted instance takes its place back at once.
    pub instance: String,
    pub interval: Duration,
    /// spark.streaming.kafka.maxRatePerPartition: records per second per partition (None: unbounded).
    pub max_rate_per_partition: Option<u64>,
    /// spark.streaming.backpressure.enabled: size batches to the rate the job has been processing at.
    pub backpressure: bool,
    pub start_from: StartFrom,
    pub bad_records: BadRecords,
    /// transaction.timeout.ms for the job's producer.
    pub transaction_timeout_ms: i32,
    /// session.timeout.ms of the job's group membership.
    pub session_timeout: Duration,
    /// Stop after this many batches (tests and benchmarks); None runs until stopped.
    pub max_batches: Option<u64>,
    /// Stop after this many rounds in a row without input (tests and benchmarks; windows go on sliding in
    /// idle rounds, so a windowed job needs as many idle rounds as its window to empty it).
    pub stop_when_idle: Option<u64>,
}

impl JobConfig {
    pub fn new(name: impl Into<String>) -> Self {
        JobConfig {
            name: name.into(),
            instance: "0".into(),
            interval: Duration::from_secs(1),
            max_rate_per_partition: None,
            backpressure: false,
            start_from: StartFrom::Earliest,
            bad_records: BadRecords::Fail,
            transaction_timeout_ms: 10_000,
            session_timeout: Duration::from_secs(10),
            max_batches: None,
            stop_when_idle: None,
        }
    }

    pub fn changelog_topic(&self) -> String {
        format!("{}-changelog", self.name)
    }

    pub fn status_topic(&self) -> String {
        format!("{}-status", self.name)
    }

    pub fn transactional_id(&self) -> String {
        format!("{}-{}", self.name, self.instance)
    }
}
