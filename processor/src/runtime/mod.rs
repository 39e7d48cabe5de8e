//! Runs a job: every batch interval, each task the instance owns takes the next offset ranges of its
//! partitions, computes them, and the instance commits every task's output, state changes, checkpoint and
//! source offsets in one Kafka transaction (with TxnOffsetCommit for the job's group). The same code runs
//! against a remote cluster and co-located in a broker (whose [`Cluster`] reaches it in process).
//!
//! This module holds the job loop and the public API; `provision` sets a job up (topics, producer, group
//! member), `assignment` turns the group's assignment into tasks restored from their checkpoints, and
//! `commit` writes each round in one transaction.

mod assignment;
pub mod changelog;
mod commit;
pub mod config;
mod follow;
pub mod metrics;
mod provision;
mod reader;
pub mod task;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use runnel_clients::consumer::{list_offsets, IsolationLevel};
use runnel_clients::group::GroupMember;
use runnel_clients::{ClientError, Cluster, Consumer, Producer, TopicPartition};

pub use config::{BadRecords, JobConfig, StartFrom};
pub use metrics::{BatchStatus, JobMetrics};

use crate::batch::OffsetRange;
use crate::context::{FollowedTables, StreamingContext, Tables};
use crate::error::{ChangelogError, ProcessorError, TaskError};
use crate::runtime::reader::RangeReader;
use crate::runtime::task::{Task, TaskBatch, TaskId};

/// The most records a batch takes from one partition when no rate limit is set.
pub const MAX_BATCH_RECORDS: i64 = 100_000;

/// Builds a job's graph on a context; called once per task.
pub type JobFn = Arc<dyn Fn(&mut StreamingContext) -> Result<(), ProcessorError> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Build(#[from] ProcessorError),
    #[error("input topic {0} does not exist")]
    NoInput(String),
    /// A task could not be restored, or a batch could not be computed (a failing user function).
    #[error(transparent)]
    Task(#[from] TaskError),
    #[error(transparent)]
    Changelog(#[from] ChangelogError),
    /// FENCED_INSTANCE_ID: another member joined the job's group with this instance id.
    #[error("another instance of job {job} runs with instance id {instance}; give each instance its own --instance-id")]
    DuplicateInstance { job: String, instance: String },
    /// Another process initialized a producer with this instance's transactional id.
    #[error("instance {instance} of job {job} was fenced: another process runs with transactional id {transactional_id}")]
    Fenced {
        job: String,
        instance: String,
        transactional_id: String,
    },
    /// A source record failed to decode and the job has no dead-letter topic.
    #[error("record {topic}/{partition}@{offset}: {reason} cannot be read (run with a dead-letter topic to set such records aside)")]
    UnreadableRecord {
        topic: String,
        partition: i32,
        offset: i64,
        reason: String,
    },
    #[error("cannot write status: {0}")]
    Status(serde_json::Error),
    #[error("cannot load table topic {topic}: {error}")]
    Table { topic: String, error: ClientError },
    #[error("restoring from {topic}/{partition} did not reach offset {end} within 60 s")]
    RestoreTimeout {
        topic: String,
        partition: i32,
        end: i64,
    },
}

/// How a job ended (when it was asked to stop or ran out of input).
#[derive(Debug, Clone, Default)]
pub struct JobSummary {
    pub rounds: u64,
    pub records: u64,
}

/// Starts a job and runs it until `stop` resolves (or it stops by itself, see [`Runtime::run`]).
pub async fn run(
    cluster: Arc<Cluster>,
    config: JobConfig,
    job: JobFn,
    metrics: Arc<JobMetrics>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<JobSummary, JobError> {
    Runtime::start(cluster, config, job, metrics)
        .await?
        .run(stop)
        .await
}

pub struct Runtime {
    cluster: Arc<Cluster>,
    config: JobConfig,
    job: JobFn,
    metrics: Arc<JobMetrics>,
    stages: Vec<Vec<String>>,
    /// Partitions per topic of the job's stages.
    partitions: HashMap<String, i32>,
    member: GroupMember,
    assignment: Vec<TopicPartition>,
    producer: Producer,
    reader: RangeReader,
    offsets: Consumer,
    tasks: BTreeMap<TaskId, Task>,
    /// Records per second the job has processed lately (for backpressure).
    rate: Option<f64>,
    /// A transaction was begun and neither committed nor aborted.
    in_transaction: bool,
    /// Static datasets loaded from topics at start.
    tables: Arc<Tables>,
    /// Tables following their topics, refreshed before every round, and the handles tasks read them by.
    followers: Vec<follow::Follower>,
    followed: Arc<FollowedTables>,
    /// For each repartition partition, the offset past the last record this instance committed to it: a
    /// later stage waits for its markers to be written (some brokers write them after EndTxn answers), so
    /// it reads everything the previous round wrote and its batches do not depend on timing.
    written: HashMap<TopicPartition, i64>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Runtime {
    /// Runs batches until `stop` resolves, the configured number of batches ran, or (with stop_when_idle)
    /// the input is exhausted.
    pub async fn run(
        mut self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<JobSummary, JobError> {
        tokio::pin!(stop);
        let interval = self.config.interval;
        let mut scheduled = Instant::now();
        let mut summary = JobSummary::default();
        let mut idle_rounds = 0u64;
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep_until(scheduled.into()) => {}
            }
            let woke = Instant::now();
            match self.ensure_tasks().await {
                Ok(()) => {}
                // A topic just created may have no leader yet, a coordinator may be moving: try again.
                Err(JobError::Client(e)) if e.is_retriable() => {
                    tracing::warn!(job = %self.config.name, error = %e, "restoring tasks failed; retrying");
                    self.drop_tasks();
                    self.member.request_rejoin();
                    tokio::time::sleep(interval.min(Duration::from_millis(500))).await;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let started = Instant::now();
            let delay = started.saturating_duration_since(scheduled);
            let time_ms = now_ms().saturating_sub(delay.as_millis() as u64);
            scheduled += interval;
            if scheduled < woke {
                // More than an interval behind: the next batch starts right away (Spark queues them too).
                scheduled = woke;
            }
            if self.tasks.is_empty() {
                continue;
            }
            match self.round(time_ms, delay, started).await {
                Ok((records, idle)) => {
                    summary.rounds += 1;
                    summary.records += records;
                    idle_rounds = if idle { idle_rounds + 1 } else { 0 };
                    if self.config.max_batches.is_some_and(|m| summary.rounds >= m)
                        || self
                            .config
                            .stop_when_idle
                            .is_some_and(|n| idle_rounds >= n.max(1))
                    {
                        break;
                    }
                }
                Err(RoundError::Fatal(e)) => return Err(e),
                Err(RoundError::Retry(ClientError::Fenced)) => {
                    // The producer stays fenced (as Kafka's does): going on would fail every round.
                    return Err(commit::fenced(&self.config));
                }
                Err(RoundError::Retry(e)) => {
                    tracing::warn!(job = %self.config.name, error = %e, "batch failed; tasks restart from their last checkpoint");
                    self.metrics.commit_failed();
                    self.reset_after_failure().await?;
                }
            }
        }
        self.member.leave(&self.cluster).await;
        Ok(summary)
    }

    /// One batch for every task, committed in one transaction. Returns the records read and whether the
    /// input was exhausted.
    async fn round(
        &mut self,
        time_ms: u64,
        delay: Duration,
        started: Instant,
    ) -> Result<(u64, bool), RoundError> {
        let tps: Vec<TopicPartition> = self
            .tasks
            .values()
            .flat_map(|t| t.topics.iter().map(move |x| (x.clone(), t.id.partition)))
            .collect();
        for f in &mut self.followers {
            f.refresh().await.map_err(RoundError::retry)?;
        }
        let ends = self.end_offsets(&tps).await.map_err(RoundError::retry)?;
        let cap = self.batch_cap(tps.len());
        let work: Vec<(&mut Task, Vec<OffsetRange>)> = self
            .tasks
            .values_mut()
            .map(|t| {
                // The rate limit holds back the job's sources; a repartition topic only carries what the
                // job itself wrote, so a later stage always takes all of it.
                let ranges = t.plan(&ends, if t.id.stage == 0 { cap } else { None });
                (t, ranges)
            })
            .collect();
        let all_ranges: Vec<OffsetRange> =
            work.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
        let input = Arc::new(
            self.reader
                .read(&all_ranges, Duration::from_secs(30))
                .await
                .map_err(RoundError::retry)?,
        );
        let results: Vec<Result<TaskBatch, TaskError>> = tokio::task::block_in_place(|| {
            work.into_par_iter()
                .map(|(t, ranges)| t.run(ranges, time_ms, Arc::clone(&input)))
                .collect()
        });
        let mut batches = Vec::new();
        for r in results {
            batches.push(r.map_err(|e| RoundError::Fatal(e.into()))?);
        }
        let dead: usize = batches.iter().map(|b| b.dead.len()).sum();
        if dead > 0 {
            if let BadRecords::Fail = self.config.bad_records {
                if let Some(d) = batches.iter().flat_map(|b| b.dead.iter()).next() {
                    return Err(RoundError::Fatal(JobError::UnreadableRecord {
                        topic: d.record.topic.clone(),
                        partition: d.record.partition,
                        offset: d.record.offset,
                        reason: d.reason.clone(),
                    }));
                }
            }
        }
        let records: u64 = batches.iter().map(|b| b.input_records as u64).sum();
        let processing = started.elapsed();
        let status = BatchStatus {
            job: self.config.name.clone(),
            instance: self.config.instance.clone(),
            time_ms,
            batches: batches
                .iter()
                .map(|b| (b.info.task.clone(), b.info.id))
                .collect(),
            ranges: all_ranges.clone(),
            records,
            processing_ms: processing.as_millis() as u64,
            scheduling_delay_ms: delay.as_millis() as u64,
            dead_letters: dead as u64,
        };
        self.commit(&batches, &status).await?;
        // The status record went out in the transaction; the metrics also count the commit.
        let processing = started.elapsed();
        let status = BatchStatus {
            processing_ms: processing.as_millis() as u64,
            ..status
        };
        if records > 0 && !processing.is_zero() {
            let r = records as f64 / processing.as_secs_f64();
            self.rate = Some(self.rate.map_or(r, |old| 0.5 * old + 0.5 * r));
        }
        self.metrics.batch_done(status);
        let idle = all_ranges.iter().all(|r| r.from >= r.until);
        Ok((records, idle))
    }

    /// The last stable offsets, once they cover what this instance wrote to its repartition topics.
    async fn end_offsets(
        &self,
        tps: &[TopicPartition],
    ) -> runnel_clients::Result<HashMap<TopicPartition, i64>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ends: HashMap<TopicPartition, i64> =
                list_offsets(&self.cluster, tps, -1, IsolationLevel::ReadCommitted)
                    .await?
                    .into_iter()
                    .map(|(tp, (o, _))| (tp, o))
                    .collect();
            let behind = tps.iter().any(|tp| {
                self.written
                    .get(tp)
                    .is_some_and(|w| ends.get(tp).is_some_and(|e| e < w))
            });
            if !behind || Instant::now() > deadline {
                return Ok(ends);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn batch_cap(&self, partitions: usize) -> Option<i64> {
        let rate = self.config.backpressure.then_some(self.rate).flatten();
        batch_cap(
            self.config.max_rate_per_partition,
            rate,
            self.config.interval,
            partitions,
        )
    }
}

/// Records per partition for the next batch: the rate limit (records/s per partition), and with
/// backpressure the rate the job has been processing at (records/s in all), over one interval. Without a
/// rate limit a batch still stops at MAX_BATCH_RECORDS per partition, so catching up on a long backlog
/// never holds it all in memory at once.
fn batch_cap(
    max_rate_per_partition: Option<u64>,
    processing_rate: Option<f64>,
    interval: Duration,
    partitions: usize,
) -> Option<i64> {
    let secs = interval.as_secs_f64();
    let limit =
        max_rate_per_partition.map_or(MAX_BATCH_RECORDS, |r| ((r as f64 * secs) as i64).max(1));
    let pressure = processing_rate.map(|r| ((r * secs / partitions.max(1) as f64) as i64).max(1));
    Some(pressure.map_or(limit, |p| p.min(limit)))
}

enum RoundError {
    /// The job cannot go on (a fenced producer, a failing user function, an unreadable record).
    Fatal(JobError),
    /// The batch failed; rebuilding the tasks from their checkpoints and going on is safe.
    Retry(ClientError),
}

impl RoundError {
    fn retry(e: ClientError) -> Self {
        RoundError::Retry(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_held_to_the_rate_limit_and_the_processing_rate() {
        let second = Duration::from_secs(1);
        assert_eq!(batch_cap(None, None, second, 3), Some(MAX_BATCH_RECORDS));
        assert_eq!(
            batch_cap(Some(1500), None, Duration::from_millis(100), 3),
            Some(150)
        );
        assert_eq!(
            batch_cap(Some(1), None, Duration::from_millis(100), 3),
            Some(1)
        );
        // Processing 3,000 records/s over 3 partitions: 1,000 per partition per second.
        assert_eq!(batch_cap(Some(5000), Some(3000.0), second, 3), Some(1000));
        assert_eq!(batch_cap(Some(500), Some(3000.0), second, 3), Some(500));
        assert_eq!(batch_cap(None, Some(0.0), second, 3), Some(1));
    }
}
