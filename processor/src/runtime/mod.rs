//! Runs a job: every batch interval, each task the instance owns takes the next offset ranges of its
//! partitions, computes them, and the instance commits every task's output, state changes, checkpoint and
//! source offsets in one Kafka transaction (with TxnOffsetCommit for the job's group). The same code runs
//! against a remote cluster and co-located in a broker (whose [`Cluster`] reaches it in process).

pub mod changelog;
pub mod config;
pub mod metrics;
mod reader;
pub mod task;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rayon::prelude::*;
use runnel_clients::admin::NewTopic;
use runnel_clients::consumer::{list_offsets, GroupMetadata, IsolationLevel};
use runnel_clients::group::{Assignor, GroupMember, GroupSettings};
use runnel_clients::{
    Admin, ClientError, Cluster, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
    ProducerRecord, TopicPartition,
};

pub use config::{BadRecords, JobConfig, StartFrom};
pub use metrics::{BatchStatus, JobMetrics};

use crate::batch::OffsetRange;
use crate::context::{dead_letter_record, StreamingContext, Table, Tables};
use crate::error::ProcessorError;
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
    #[error("{0}")]
    Failed(String),
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
    /// Checks the job's topics (creating its internal and output topics when missing), joins its group and
    /// initializes its transactional producer.
    pub async fn start(
        cluster: Arc<Cluster>,
        config: JobConfig,
        job: JobFn,
        metrics: Arc<JobMetrics>,
    ) -> Result<Runtime, JobError> {
        let mut probe = StreamingContext::new(&config.name, config.interval.as_millis() as u64);
        job(&mut probe)?;
        let stages = probe.stages().to_vec();
        let admin = Admin::new(Arc::clone(&cluster));
        let existing = admin.list_topics().await?;
        let mut partitions = HashMap::new();
        for t in &stages[0] {
            if !existing.contains(t) {
                return Err(JobError::NoInput(t.clone()));
            }
            let d = admin.describe_topics(std::slice::from_ref(t)).await?;
            let n = d.first().map_or(0, |d| d.partitions.len() as i32);
            partitions.insert(t.clone(), n);
        }
        let width = partitions.values().copied().max().unwrap_or(1).max(1);
        let mut wanted: Vec<NewTopic> = Vec::new();
        let new_topic = |name: &str, n: i32, configs: Vec<(String, String)>| NewTopic {
            name: name.to_string(),
            partitions: n,
            replication: -1,
            configs,
        };
        for stage in &stages[1..] {
            for t in stage {
                partitions.insert(t.clone(), width);
                wanted.push(new_topic(t, width, Vec::new()));
            }
        }
        let compact = vec![("cleanup.policy".to_string(), "compact".to_string())];
        wanted.push(new_topic(&config.changelog_topic(), width, compact));
        wanted.push(new_topic(&config.status_topic(), 1, Vec::new()));
        for t in probe.sink_topics() {
            wanted.push(new_topic(t, width, Vec::new()));
        }
        if let BadRecords::DeadLetter(t) = &config.bad_records {
            wanted.push(new_topic(t, width, Vec::new()));
        }
        let missing: Vec<NewTopic> = wanted
            .into_iter()
            .filter(|t| !existing.contains(&t.name))
            .collect();
        if !missing.is_empty() {
            if let Err(e) = admin.create_topics(&missing, false).await {
                // Another instance may have created them first.
                if e.code() != Some(36) {
                    return Err(e.into());
                }
            }
        }
        let mut tables = Tables::new();
        for t in probe.wanted_tables() {
            tables.insert(t.clone(), Arc::new(load_table(&cluster, &admin, t).await?));
        }
        let producer = transactional_producer(&cluster, &config).await?;
        let member = GroupMember::new(GroupSettings {
            group_id: config.name.clone(),
            instance_id: Some(config.instance.clone()),
            session_timeout: config.session_timeout,
            rebalance_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_millis(500),
            assignors: vec![Assignor::Range],
        });
        let offsets = Consumer::new(
            Arc::clone(&cluster),
            ConsumerConfig {
                group_id: Some(config.name.clone()),
                isolation: IsolationLevel::ReadCommitted,
                ..ConsumerConfig::default()
            },
        );
        Ok(Runtime {
            reader: RangeReader::new(Arc::clone(&cluster)),
            cluster,
            config,
            job,
            metrics,
            stages,
            partitions,
            member,
            assignment: Vec::new(),
            producer,
            offsets,
            tasks: BTreeMap::new(),
            rate: None,
            in_transaction: false,
            written: HashMap::new(),
            tables: Arc::new(tables),
        })
    }

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

    /// Rejoins the group when it asks, and makes the tasks match the assignment.
    async fn ensure_tasks(&mut self) -> Result<(), JobError> {
        if !self.member.needs_rejoin() {
            return Ok(());
        }
        let topics: Vec<String> = self.stages.iter().flatten().cloned().collect();
        let assignment = match self.member.join(&self.cluster, &topics, &[]).await {
            Ok(a) => a,
            // FENCED_INSTANCE_ID: another member joined with this group.instance.id.
            Err(e) if e.code() == Some(82) => {
                return Err(JobError::Failed(format!(
                    "another instance of job {} runs with instance id {}; give each instance its own --instance-id",
                    self.config.name, self.config.instance
                )));
            }
            Err(e) => {
                tracing::warn!(job = %self.config.name, error = %e, "joining the job's group failed; retrying");
                self.member.request_rejoin();
                return Ok(());
            }
        };
        self.assignment = assignment;
        // Every task is rebuilt from its checkpoint after a rebalance: a partition kept across it may have
        // been processed elsewhere in between, and the checkpoint is the committed truth.
        self.drop_tasks();
        let mut owned: Vec<TaskId> = Vec::new();
        for (stage, topics) in self.stages.iter().enumerate() {
            let width = topics
                .iter()
                .filter_map(|t| self.partitions.get(t))
                .copied()
                .max()
                .unwrap_or(0);
            for p in 0..width {
                let mine = topics
                    .iter()
                    .filter(|t| self.partitions.get(*t).is_some_and(|n| p < *n))
                    .all(|t| self.assignment.contains(&(t.clone(), p)));
                if mine {
                    owned.push(TaskId {
                        stage,
                        partition: p,
                    });
                }
            }
        }
        for id in owned {
            let task = self.restore_task(id).await?;
            self.tasks.insert(id, task);
            self.metrics.task_restored();
        }
        tracing::info!(job = %self.config.name, instance = %self.config.instance, tasks = ?self.tasks.keys().map(ToString::to_string).collect::<Vec<_>>(), "tasks assigned");
        Ok(())
    }

    fn drop_tasks(&mut self) {
        for t in self.tasks.values() {
            for topic in &t.topics {
                self.reader.forget(&(topic.clone(), t.id.partition));
            }
        }
        self.tasks.clear();
    }

    async fn restore_task(&mut self, id: TaskId) -> Result<Task, JobError> {
        let topics: Vec<String> = self.stages[id.stage]
            .iter()
            .filter(|t| self.partitions.get(*t).is_some_and(|n| id.partition < *n))
            .cloned()
            .collect();
        let tps: Vec<TopicPartition> = topics.iter().map(|t| (t.clone(), id.partition)).collect();
        // Committed offsets first: the fetch waits out a transaction still committing offsets
        // (require_stable), so the changelog read next already holds that transaction's state too.
        let committed: HashMap<String, i64> = self
            .offsets
            .committed(&tps)
            .await?
            .into_iter()
            .filter(|(_, o)| *o >= 0)
            .map(|((t, _), o)| (t, o))
            .collect();
        let records =
            read_partition(&self.cluster, &self.config.changelog_topic(), id.partition).await?;
        let restored = changelog::fold(id.stage, records).map_err(JobError::Failed)?;
        let ts = match self.config.start_from {
            StartFrom::Earliest => -2,
            StartFrom::Latest => -1,
        };
        let start: HashMap<String, i64> =
            list_offsets(&self.cluster, &tps, ts, IsolationLevel::ReadCommitted)
                .await?
                .into_iter()
                .map(|((t, _), (o, _))| (t, o))
                .collect();
        let mut ctx = StreamingContext::with_tables(
            &self.config.name,
            self.config.interval.as_millis() as u64,
            Arc::clone(&self.tables),
        );
        (self.job)(&mut ctx)?;
        Task::restore(id, ctx, topics, restored, &committed, &start).map_err(JobError::Failed)
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
        let results: Vec<Result<TaskBatch, String>> = tokio::task::block_in_place(|| {
            work.into_par_iter()
                .map(|(t, ranges)| t.run(ranges, time_ms, Arc::clone(&input)))
                .collect()
        });
        let mut batches = Vec::new();
        for r in results {
            batches.push(r.map_err(|e| RoundError::Fatal(JobError::Failed(e)))?);
        }
        let dead: usize = batches.iter().map(|b| b.dead.len()).sum();
        if dead > 0 {
            if let BadRecords::Fail = self.config.bad_records {
                let first = batches.iter().flat_map(|b| b.dead.iter()).next();
                let what = first.map_or(String::new(), |d| {
                    format!(
                        "{}/{}@{}: {}",
                        d.record.topic, d.record.partition, d.record.offset, d.reason
                    )
                });
                return Err(RoundError::Fatal(JobError::Failed(format!(
                    "record {what} cannot be read (run with a dead-letter topic to set such records aside)"
                ))));
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

    async fn commit(
        &mut self,
        batches: &[TaskBatch],
        status: &BatchStatus,
    ) -> Result<(), RoundError> {
        let p = &self.producer;
        p.begin_transaction().map_err(RoundError::retry)?;
        self.in_transaction = true;
        let changelog = self.config.changelog_topic();
        let mut repartitioned = Vec::new();
        for b in batches {
            for r in &b.records {
                let delivery = p
                    .send(ProducerRecord {
                        topic: r.topic.clone(),
                        key: r.key.clone(),
                        value: r.value.clone(),
                        headers: r.headers.clone(),
                        ..ProducerRecord::default()
                    })
                    .await
                    .map_err(RoundError::retry)?;
                if self.stages[1..].iter().flatten().any(|t| *t == r.topic) {
                    repartitioned.push(delivery);
                }
            }
            if let BadRecords::DeadLetter(topic) = &self.config.bad_records {
                for d in &b.dead {
                    let r = dead_letter_record(topic, d);
                    p.send(ProducerRecord {
                        topic: r.topic,
                        key: r.key,
                        value: r.value,
                        headers: r.headers,
                        ..ProducerRecord::default()
                    })
                    .await
                    .map_err(RoundError::retry)?;
                }
            }
            for (k, v) in &b.changelog {
                p.send(ProducerRecord {
                    topic: changelog.clone(),
                    partition: Some(b.partition),
                    key: Some(k.clone()),
                    value: v.clone(),
                    ..ProducerRecord::default()
                })
                .await
                .map_err(RoundError::retry)?;
            }
        }
        let status_json = serde_json::to_vec(status).map_err(|e| {
            RoundError::Fatal(JobError::Failed(format!("cannot write status: {e}")))
        })?;
        p.send(ProducerRecord {
            topic: self.config.status_topic(),
            partition: Some(0),
            key: Some(Bytes::from(self.config.instance.clone())),
            value: Some(Bytes::from(status_json)),
            ..ProducerRecord::default()
        })
        .await
        .map_err(RoundError::retry)?;
        let offsets: Vec<(String, i32, i64)> = batches
            .iter()
            .flat_map(|b| {
                b.info
                    .ranges
                    .iter()
                    .map(|r| (r.topic.clone(), r.partition, r.until))
            })
            .collect();
        let group = GroupMetadata {
            group_id: self.config.name.clone(),
            generation: self.member.generation,
            member_id: self.member.member_id.clone(),
            instance_id: Some(self.config.instance.clone()),
        };
        p.send_offsets_to_transaction(&offsets, &group)
            .await
            .map_err(RoundError::retry)?;
        p.commit_transaction().await.map_err(RoundError::retry)?;
        self.in_transaction = false;
        for d in repartitioned {
            // Committed, so every delivery has its answer already.
            if let Ok(m) = d.await {
                let w = self.written.entry((m.topic, m.partition)).or_insert(0);
                *w = (*w).max(m.offset + 1);
            }
        }
        Ok(())
    }

    /// After a failed batch: abort its transaction and rebuild every task from its checkpoint.
    async fn reset_after_failure(&mut self) -> Result<(), JobError> {
        let aborted = if self.in_transaction {
            self.producer.abort_transaction().await
        } else {
            Ok(())
        };
        self.in_transaction = false;
        if let Err(e) = aborted {
            if matches!(e, ClientError::Fenced) {
                return Err(fenced(&self.config));
            }
            // A producer that cannot abort is replaced; initializing the new one aborts what is open.
            tracing::warn!(job = %self.config.name, error = %e, "abort failed; starting a new producer");
            self.producer = transactional_producer(&self.cluster, &self.config).await?;
        }
        self.drop_tasks();
        self.member.request_rejoin();
        Ok(())
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

/// The instance's producer under its transactional id, initialized (which aborts whatever an earlier
/// incarnation left open).
async fn transactional_producer(
    cluster: &Arc<Cluster>,
    config: &JobConfig,
) -> Result<Producer, JobError> {
    let producer = Producer::new(
        Arc::clone(cluster),
        ProducerConfig {
            transactional_id: Some(config.transactional_id()),
            transaction_timeout_ms: config.transaction_timeout_ms,
            linger: Duration::from_millis(1),
            batch_size: 256 * 1024,
            ..ProducerConfig::default()
        },
    )
    .await?;
    producer.init_transactions().await?;
    Ok(producer)
}

fn fenced(config: &JobConfig) -> JobError {
    JobError::Failed(format!(
        "instance {} of job {} was fenced: another process runs with transactional id {}",
        config.instance,
        config.name,
        config.transactional_id()
    ))
}

enum RoundError {
    /// The job cannot go on (a fenced producer, a failing user function, an unreadable record).
    Fatal(JobError),
    /// The batch failed; rebuilding the tasks from their checkpoints and going on is safe.
    Retry(String),
}

impl RoundError {
    fn retry(e: ClientError) -> Self {
        RoundError::Retry(e.to_string())
    }
}

/// A static dataset from every partition of a topic: the latest value of each key (UTF-8), null deleting.
async fn load_table(cluster: &Arc<Cluster>, admin: &Admin, topic: &str) -> Result<Table, JobError> {
    let described = admin
        .describe_topics(&[topic.to_string()])
        .await
        .map_err(|e| JobError::Failed(format!("cannot load table topic {topic}: {e}")))?;
    let partitions = described.first().map_or(0, |d| d.partitions.len() as i32);
    let mut table = Table::new();
    for p in 0..partitions {
        for (k, v) in read_partition(cluster, topic, p).await? {
            let key = String::from_utf8_lossy(&k).into_owned();
            match v {
                Some(v) => {
                    table.insert(key, String::from_utf8_lossy(&v).into_owned());
                }
                None => {
                    table.remove(&key);
                }
            }
        }
    }
    Ok(table)
}

/// Every committed record of one partition, from its start to its last stable offset.
async fn read_partition(
    cluster: &Arc<Cluster>,
    topic: &str,
    partition: i32,
) -> Result<Vec<(Bytes, Option<Bytes>)>, JobError> {
    let tp = (topic.to_string(), partition);
    let tps = [tp.clone()];
    let end = list_offsets(cluster, &tps, -1, IsolationLevel::ReadCommitted)
        .await?
        .get(&tp)
        .map_or(0, |(o, _)| *o);
    let mut c = Consumer::new(
        Arc::clone(cluster),
        ConsumerConfig {
            isolation: IsolationLevel::ReadCommitted,
            auto_offset_reset: OffsetReset::Earliest,
            max_poll_records: 100_000,
            fetch_max_wait: Duration::from_millis(50),
            ..ConsumerConfig::default()
        },
    );
    c.assign(tps.to_vec());
    c.seek_to_beginning(&tps).await?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.position(&tp).is_none_or(|p| p < end) {
        if Instant::now() > deadline {
            return Err(JobError::Failed(format!(
                "restoring from {topic}/{partition} did not reach offset {end} within 60 s"
            )));
        }
        for r in c.poll(Duration::from_millis(200)).await? {
            if r.offset < end {
                out.push((r.key.unwrap_or_default(), r.value));
            }
        }
    }
    Ok(out)
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
