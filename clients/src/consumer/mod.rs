//! The consumer: manual assignment or group subscription, a position per partition, fetches from each
//! leader in parallel, offset commits, seeks, pause/resume and read_committed isolation. Fetching and
//! positions live in `fetch.rs`, commits in `commit.rs`.

mod commit;
mod fetch;

pub(crate) use commit::send_commit;
pub use fetch::list_offsets;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, CoordinatorType};
use crate::connection::Connection;
use crate::error::{ClientError, Result};
use crate::group::{Assignor, GroupMember, GroupSettings};
use crate::records::{decode, ConsumerRecord};
use crate::TopicPartition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    Earliest,
    Latest,
    /// Fail instead of guessing (auto.offset.reset=none).
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IsolationLevel {
    ReadUncommitted,
    ReadCommitted,
}

/// Consumer settings with the Java client's defaults (Kafka's names in the docs).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// group.id: needed for subscribe and commits.
    pub group_id: Option<String>,
    /// group.instance.id: static membership.
    pub instance_id: Option<String>,
    /// auto.offset.reset
    pub auto_offset_reset: OffsetReset,
    /// enable.auto.commit (off by default here: commit explicitly or set it)
    pub enable_auto_commit: bool,
    /// auto.commit.interval.ms
    pub auto_commit_interval: Duration,
    /// isolation.level
    pub isolation: IsolationLevel,
    /// max.poll.records
    pub max_poll_records: usize,
    /// fetch.min.bytes
    pub fetch_min_bytes: i32,
    /// fetch.max.wait.ms
    pub fetch_max_wait: Duration,
    /// max.partition.fetch.bytes
    pub max_partition_fetch_bytes: i32,
    /// fetch.max.bytes
    pub fetch_max_bytes: i32,
    /// session.timeout.ms
    pub session_timeout: Duration,
    /// max.poll.interval.ms (the rebalance timeout)
    pub rebalance_timeout: Duration,
    /// heartbeat.interval.ms
    pub heartbeat_interval: Duration,
    /// partition.assignment.strategy, in order of preference.
    pub assignors: Vec<Assignor>,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            group_id: None,
            instance_id: None,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: false,
            auto_commit_interval: Duration::from_secs(5),
            isolation: IsolationLevel::ReadUncommitted,
            max_poll_records: 500,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1_048_576,
            fetch_max_bytes: 52_428_800,
            session_timeout: Duration::from_secs(45),
            rebalance_timeout: Duration::from_secs(300),
            heartbeat_interval: Duration::from_secs(3),
            assignors: vec![Assignor::Range, Assignor::CooperativeSticky],
        }
    }
}

/// What a transactional producer needs of the group to commit offsets (sendOffsetsToTransaction).
#[derive(Debug, Clone)]
pub struct GroupMetadata {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
}

/// Called when the group changes this consumer's partitions.
pub trait RebalanceListener: Send + Sync {
    fn on_revoked(&self, partitions: &[TopicPartition]);
    fn on_assigned(&self, partitions: &[TopicPartition]);
}

pub struct Consumer {
    cluster: Arc<Cluster>,
    config: ConsumerConfig,
    assignment: Vec<TopicPartition>,
    /// Next offset to hand to the application.
    positions: HashMap<TopicPartition, i64>,
    /// Next offset to fetch (ahead of `positions` while records wait in the buffer).
    fetch_positions: HashMap<TopicPartition, i64>,
    paused: HashSet<TopicPartition>,
    buffer: VecDeque<ConsumerRecord>,
    subscription: Option<Vec<String>>,
    group: Option<GroupMember>,
    /// A rebalance in progress: the member is lent to this task until the join completes, so a slow
    /// rebalance never holds up `poll` past its timeout.
    joining: Option<JoinTask>,
    listener: Option<Arc<dyn RebalanceListener>>,
    last_commit: Instant,
}

type JoinTask = tokio::task::JoinHandle<(GroupMember, Result<Vec<TopicPartition>>)>;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl Consumer {
    pub fn new(cluster: Arc<Cluster>, config: ConsumerConfig) -> Self {
        Consumer {
            cluster,
            config,
            assignment: Vec::new(),
            positions: HashMap::new(),
            fetch_positions: HashMap::new(),
            paused: HashSet::new(),
            buffer: VecDeque::new(),
            subscription: None,
            group: None,
            joining: None,
            listener: None,
            last_commit: Instant::now(),
        }
    }

    pub fn set_rebalance_listener(&mut self, l: Arc<dyn RebalanceListener>) {
        self.listener = Some(l);
    }

    /// Manual assignment: no group membership, positions from committed offsets (with a group id) or the
    /// reset policy.
    pub fn assign(&mut self, partitions: Vec<TopicPartition>) {
        self.subscription = None;
        self.set_assignment(partitions);
    }

    fn set_assignment(&mut self, partitions: Vec<TopicPartition>) {
        let keep: HashSet<&TopicPartition> = partitions.iter().collect();
        self.positions.retain(|tp, _| keep.contains(tp));
        self.fetch_positions.retain(|tp, _| keep.contains(tp));
        self.buffer
            .retain(|r| keep.contains(&(r.topic.clone(), r.partition)));
        self.paused.retain(|tp| keep.contains(tp));
        self.assignment = partitions;
    }

    pub fn assignment(&self) -> &[TopicPartition] {
        &self.assignment
    }

    /// Subscribes through the group (group.id required); partitions arrive with the next poll.
    pub fn subscribe(&mut self, topics: Vec<String>) -> Result<()> {
        let group_id = self
            .config
            .group_id
            .clone()
            .ok_or_else(|| ClientError::Invalid("subscribe needs a group.id".into()))?;
        self.subscription = Some(topics);
        if self.group.is_none() && self.joining.is_none() {
            self.group = Some(GroupMember::new(GroupSettings {
                group_id,
                instance_id: self.config.instance_id.clone(),
                session_timeout: self.config.session_timeout,
                rebalance_timeout: self.config.rebalance_timeout,
                heartbeat_interval: self.config.heartbeat_interval,
                assignors: self.config.assignors.clone(),
            }));
        }
        if let Some(g) = &self.group {
            g.request_rejoin();
        }
        Ok(())
    }

    pub fn group_metadata(&self) -> Option<GroupMetadata> {
        let group_id = self.config.group_id.clone()?;
        Some(match &self.group {
            Some(g) => GroupMetadata {
                group_id,
                generation: g.generation,
                member_id: g.member_id.clone(),
                instance_id: self.config.instance_id.clone(),
            },
            None => GroupMetadata {
                group_id,
                generation: -1,
                member_id: String::new(),
                instance_id: None,
            },
        })
    }

    fn new_member(&self) -> Option<GroupMember> {
        Some(GroupMember::new(GroupSettings {
            group_id: self.config.group_id.clone()?,
            instance_id: self.config.instance_id.clone(),
            session_timeout: self.config.session_timeout,
            rebalance_timeout: self.config.rebalance_timeout,
            heartbeat_interval: self.config.heartbeat_interval,
            assignors: self.config.assignors.clone(),
        }))
    }

    /// Starts a rejoin when the group asks for one, and applies its result once it is there (waiting for it
    /// at most until `deadline`).
    async fn ensure_membership(&mut self, deadline: Instant) -> Result<()> {
        let Some(topics) = self.subscription.clone() else {
            return Ok(());
        };
        if self.joining.is_none() {
            if !self.group.as_ref().is_some_and(GroupMember::needs_rejoin) {
                return Ok(());
            }
            let cooperative =
                self.group.as_ref().and_then(|g| g.protocol) == Some(Assignor::CooperativeSticky);
            let owned = if cooperative {
                self.assignment.clone()
            } else {
                Vec::new()
            };
            if !cooperative && !self.assignment.is_empty() {
                // Eager protocol: commit and give up everything before rejoining.
                if self.config.enable_auto_commit {
                    let _ = self.commit_current().await;
                }
                if let Some(l) = &self.listener {
                    l.on_revoked(&self.assignment);
                }
                self.set_assignment(Vec::new());
            }
            let Some(mut group) = self.group.take() else {
                return Ok(());
            };
            let cluster = Arc::clone(&self.cluster);
            self.joining = Some(tokio::spawn(async move {
                let r = group.join(&cluster, &topics, &owned).await;
                (group, r)
            }));
        }
        let Some(task) = self.joining.as_mut() else {
            return Ok(());
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let joined = match tokio::time::timeout(left, task).await {
            Err(_) => return Ok(()), // still rebalancing: the next poll goes on waiting
            Ok(j) => j,
        };
        self.joining = None;
        let (group, result) = match joined {
            Ok(pair) => pair,
            Err(e) => {
                self.group = self.new_member();
                return Err(ClientError::Protocol(format!(
                    "group join task failed: {e}"
                )));
            }
        };
        let protocol = group.protocol;
        self.group = Some(group);
        let new = result?;
        let revoked: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|tp| !new.contains(tp))
            .cloned()
            .collect();
        let added: Vec<TopicPartition> = new
            .iter()
            .filter(|tp| !self.assignment.contains(tp))
            .cloned()
            .collect();
        if !revoked.is_empty() {
            if self.config.enable_auto_commit {
                let _ = self.commit_current().await;
            }
            if let Some(l) = &self.listener {
                l.on_revoked(&revoked);
            }
        }
        self.set_assignment(new);
        if let Some(l) = &self.listener {
            if !added.is_empty() || protocol != Some(Assignor::CooperativeSticky) {
                l.on_assigned(&added);
            }
        }
        if protocol == Some(Assignor::CooperativeSticky) && !revoked.is_empty() {
            // KIP-429: having given partitions up, rejoin so they can be handed to their new owners.
            if let Some(g) = &self.group {
                g.request_rejoin();
            }
        }
        Ok(())
    }

    /// Returns the next records (up to max.poll.records), waiting up to `timeout` for some.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        loop {
            self.ensure_membership(deadline).await?;
            if self.config.enable_auto_commit
                && self.last_commit.elapsed() >= self.config.auto_commit_interval
            {
                let _ = self.commit_sync().await;
            }
            if !self.buffer.is_empty() {
                return Ok(self.drain());
            }
            self.resolve_positions().await?;
            let left = deadline.saturating_duration_since(Instant::now());
            self.fetch(left.min(self.config.fetch_max_wait)).await?;
            if !self.buffer.is_empty() || Instant::now() >= deadline {
                return Ok(self.drain());
            }
            if self.fetchable().is_empty() {
                tokio::time::sleep(left.min(Duration::from_millis(50))).await;
            }
        }
    }

    fn drain(&mut self) -> Vec<ConsumerRecord> {
        let n = self.buffer.len().min(self.config.max_poll_records);
        let out: Vec<ConsumerRecord> = self.buffer.drain(..n).collect();
        for r in &out {
            self.positions
                .insert((r.topic.clone(), r.partition), r.offset + 1);
        }
        // Partitions with nothing buffered are positioned where the next fetch starts (past markers).
        let buffered: HashSet<(String, i32)> = self
            .buffer
            .iter()
            .map(|r| (r.topic.clone(), r.partition))
            .collect();
        for (tp, next) in &self.fetch_positions {
            if !buffered.contains(tp) {
                self.positions.insert(tp.clone(), *next);
            }
        }
        out
    }

    fn fetchable(&self) -> Vec<TopicPartition> {
        self.assignment
            .iter()
            .filter(|tp| !self.paused.contains(*tp) && self.fetch_positions.contains_key(*tp))
            .cloned()
            .collect()
    }

    pub fn seek(&mut self, tp: TopicPartition, offset: i64) {
        self.buffer
            .retain(|r| !(r.topic == tp.0 && r.partition == tp.1));
        self.fetch_positions.insert(tp.clone(), offset);
        self.positions.insert(tp, offset);
    }

    pub async fn seek_to_beginning(&mut self, parts: &[TopicPartition]) -> Result<()> {
        for (tp, (o, _)) in self.list_offsets(parts, -2).await? {
            self.seek(tp, o);
        }
        Ok(())
    }

    pub async fn seek_to_end(&mut self, parts: &[TopicPartition]) -> Result<()> {
        for (tp, (o, _)) in self.list_offsets(parts, -1).await? {
            self.seek(tp, o);
        }
        Ok(())
    }

    /// Positions each partition at its first record at or after `timestamp` (its end when there is none).
    pub async fn seek_to_timestamp(
        &mut self,
        parts: &[TopicPartition],
        timestamp: i64,
    ) -> Result<()> {
        let found = self.list_offsets(parts, timestamp).await?;
        let ends = self.list_offsets(parts, -1).await?;
        for tp in parts {
            let o = match found.get(tp) {
                Some((o, _)) if *o >= 0 => *o,
                _ => ends.get(tp).map_or(0, |e| e.0),
            };
            self.seek(tp.clone(), o);
        }
        Ok(())
    }

    pub fn position(&self, tp: &TopicPartition) -> Option<i64> {
        self.positions.get(tp).copied()
    }

    pub fn pause(&mut self, parts: &[TopicPartition]) {
        for tp in parts {
            self.paused.insert(tp.clone());
            self.buffer
                .retain(|r| !(r.topic == tp.0 && r.partition == tp.1));
            if let Some(p) = self.positions.get(tp).copied() {
                self.fetch_positions.insert(tp.clone(), p);
            }
        }
    }

    pub fn resume(&mut self, parts: &[TopicPartition]) {
        for tp in parts {
            self.paused.remove(tp);
        }
    }

    /// Commits (when auto commit is on) and leaves the group.
    pub async fn close(mut self) -> Result<()> {
        if self.config.enable_auto_commit && self.group.is_some() {
            let _ = self.commit_sync().await;
        }
        let cluster = Arc::clone(&self.cluster);
        if let Some(task) = self.joining.take() {
            if let Ok(Ok((g, _))) = tokio::time::timeout(self.config.session_timeout, task).await {
                self.group = Some(g);
            }
        }
        if let Some(mut g) = self.group.take() {
            g.leave(&cluster).await;
        }
        Ok(())
    }
}
