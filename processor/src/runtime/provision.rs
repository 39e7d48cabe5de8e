//! Provisioning a job before its first batch: [`Runtime::start`] builds the job graph once to learn its
//! stages, checks that the input topics exist, creates the job's internal topics (repartition topics, the
//! compacted changelog, the status topic) and its output and dead-letter topics when missing, loads the
//! static tables the job asked for, and sets up the transactional producer, the group membership and the
//! consumer that reads the group's committed offsets. Reading a whole partition back (tables, changelog
//! restores) lives here too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use runnel_clients::admin::NewTopic;
use runnel_clients::consumer::{list_offsets, IsolationLevel};
use runnel_clients::group::{Assignor, GroupMember, GroupSettings};
use runnel_clients::{
    Admin, Cluster, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig,
};

use super::follow::{self, read_table, Follower};
use super::{BadRecords, JobConfig, JobError, JobFn, JobMetrics, Runtime};
use crate::context::{StreamingContext, Tables};
use crate::runtime::reader::RangeReader;

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
            let (table, _) = read_table(&cluster, &admin, t).await?;
            tables.insert(t.clone(), Arc::new(table));
        }
        let mut followers = Vec::new();
        for t in probe.wanted_follows() {
            followers.push(Follower::start(&cluster, &admin, t).await?);
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
            followed: Arc::new(follow::handles(&followers)),
            followers,
        })
    }
}

/// The instance's producer under its transactional id, initialized (which aborts whatever an earlier
/// incarnation left open).
pub(super) async fn transactional_producer(
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

/// Every committed record of one partition, from its start to its last stable offset (returned too).
pub(super) async fn read_partition(
    cluster: &Arc<Cluster>,
    topic: &str,
    partition: i32,
) -> Result<(Vec<(Bytes, Option<Bytes>)>, i64), JobError> {
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
            return Err(JobError::RestoreTimeout {
                topic: topic.to_string(),
                partition,
                end,
            });
        }
        for r in c.poll(Duration::from_millis(200)).await? {
            if r.offset < end {
                out.push((r.key.unwrap_or_default(), r.value));
            }
        }
    }
    Ok((out, end))
}
