//! Followed tables: one read_committed consumer per followed topic, caught up when the job starts and
//! polled once before every round, so each round's tasks see what was committed to the topic by then.

use std::sync::Arc;
use std::time::Duration;

use runnel_clients::consumer::{ConsumerConfig, IsolationLevel, OffsetReset};
use runnel_clients::{Admin, Cluster, Consumer, ConsumerRecord, TopicPartition};

use super::provision::read_partition;
use super::JobError;
use crate::context::{Followed, FollowedTables, Table};

pub(super) struct Follower {
    topic: String,
    consumer: Consumer,
    table: Table,
    handle: Arc<Followed>,
}

impl Follower {
    /// Reads the topic to its last stable offset and goes on from there.
    pub(super) async fn start(
        cluster: &Arc<Cluster>,
        admin: &Admin,
        topic: &str,
    ) -> Result<Follower, JobError> {
        let (table, positions) = read_table(cluster, admin, topic).await?;
        let mut consumer = Consumer::new(
            Arc::clone(cluster),
            ConsumerConfig {
                isolation: IsolationLevel::ReadCommitted,
                auto_offset_reset: OffsetReset::Earliest,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign(positions.iter().map(|(tp, _)| tp.clone()).collect());
        for (tp, end) in positions {
            consumer.seek(tp, end);
        }
        let handle = Arc::new(Followed::default());
        handle.publish(Arc::new(table.clone()));
        Ok(Follower {
            topic: topic.to_string(),
            consumer,
            table,
            handle,
        })
    }

    pub(super) fn handle(&self) -> (String, Arc<Followed>) {
        (self.topic.clone(), Arc::clone(&self.handle))
    }

    /// Takes in what was committed since the last call (one fetch that does not wait).
    pub(super) async fn refresh(&mut self) -> runnel_clients::Result<()> {
        let records: Vec<ConsumerRecord> = self.consumer.poll(Duration::ZERO).await?;
        if records.is_empty() {
            return Ok(());
        }
        for r in &records {
            apply(
                &mut self.table,
                r.key.as_deref().unwrap_or_default(),
                r.value.as_deref(),
            );
        }
        self.handle.publish(Arc::new(self.table.clone()));
        Ok(())
    }
}

/// A table from every partition of a topic (the latest value of each key, as UTF-8; null deleting), and
/// where each partition's read ended.
pub(super) async fn read_table(
    cluster: &Arc<Cluster>,
    admin: &Admin,
    topic: &str,
) -> Result<(Table, Vec<(TopicPartition, i64)>), JobError> {
    let described = admin
        .describe_topics(&[topic.to_string()])
        .await
        .map_err(|error| JobError::Table {
            topic: topic.to_string(),
            error,
        })?;
    let partitions = described.first().map_or(0, |d| d.partitions.len() as i32);
    let mut table = Table::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (records, end) = read_partition(cluster, topic, p).await?;
        for (k, v) in records {
            apply(&mut table, &k, v.as_deref());
        }
        ends.push(((topic.to_string(), p), end));
    }
    Ok((table, ends))
}

fn apply(table: &mut Table, key: &[u8], value: Option<&[u8]>) {
    let key = String::from_utf8_lossy(key).into_owned();
    match value {
        Some(v) => {
            table.insert(key, String::from_utf8_lossy(v).into_owned());
        }
        None => {
            table.remove(&key);
        }
    }
}

/// The handles tasks read, by topic.
pub(super) fn handles(followers: &[Follower]) -> FollowedTables {
    followers.iter().map(Follower::handle).collect()
}
