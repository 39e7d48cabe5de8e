//! The group coordinator: every classic group of this broker behind one lock, its durable store, and the
//! timers (session expiry, rebalance deadlines) driven by [`GroupCoordinator::tick`].
//!
//! Requests that must wait for a rebalance get a [`Pending::Wait`] receiver and await it after the lock is
//! released; the group completes it when the rebalance moves on. Error codes are those Kafka's classic
//! coordinator sends in the same situation.
//!
//! The request handling is split by concern, each file adding its own `impl GroupCoordinator` block:
//! [`membership`] (JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the timers), [`offsets`] (OffsetCommit,
//! OffsetFetch, transactional offsets and expiry) and [`admin`] (ListGroups, DescribeGroups, DeleteGroups,
//! OffsetDelete), with [`held`] the cluster side (groups claimed from and written to the metadata database).
//! This file holds the coordinator itself, the types its callers use, and the helpers the
//! three share.

mod admin;
mod held;
mod membership;
mod offsets;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use runnel_storage::StorageError;
use tokio::sync::oneshot;

use super::group::{CommittedOffset, Group, GroupState, Member};
use super::store::{Change, GroupRecord, GroupStore, Loaded, MemberRecord};

/// The broker settings that govern groups (Kafka's names in parentheses).
#[derive(Debug, Clone)]
pub struct GroupSettings {
    /// group.min.session.timeout.ms / group.max.session.timeout.ms
    pub min_session: Duration,
    pub max_session: Duration,
    /// group.initial.rebalance.delay.ms
    pub initial_delay: Duration,
    /// group.max.size
    pub max_size: usize,
    /// offsets.retention.minutes, in ms
    pub offsets_retention_ms: i64,
    /// offset.metadata.max.bytes
    pub metadata_max_bytes: usize,
}

pub enum Pending<T> {
    Ready(T),
    Wait(oneshot::Receiver<T>),
}

pub struct JoinParams {
    pub group_id: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    pub version: i16,
}

pub struct SyncParams {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// One partition's offset in an OffsetCommit.
pub struct CommitEntry {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

pub struct CommitParams {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub topics: Vec<(String, Vec<CommitEntry>)>,
}

/// An error code per partition, grouped by topic in request order.
pub type PartitionCodes = Vec<(String, Vec<(i32, i16)>)>;
/// Offsets a commit stored, by (topic, partition).
type StoredOffsets = Vec<((String, i32), CommittedOffset)>;
/// Committed offsets per partition (None: nothing committed), grouped by topic.
pub type FetchedOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// A group as DescribeGroups shows it.
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

struct Inner {
    groups: HashMap<String, Group>,
    store: GroupStore,
}

pub struct GroupCoordinator {
    inner: Mutex<Inner>,
    settings: GroupSettings,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Static-membership check of a request naming a group.instance.id: an instance the group does not know is
/// an unknown member; one held by another member id is fenced (Kafka's order and codes).
fn instance_mismatch(group: &Group, instance: Option<&str>, member_id: &str) -> Option<i16> {
    let instance = instance?;
    match group.static_members.get(instance) {
        None => Some(code(ResponseError::UnknownMemberId)),
        Some(m) if m != member_id => Some(code(ResponseError::FencedInstanceId)),
        Some(_) => None,
    }
}

fn record_of(g: &Group) -> GroupRecord {
    GroupRecord {
        protocol_type: g.protocol_type.clone(),
        protocol: g.protocol.clone(),
        generation: g.generation,
        leader: g.leader.clone(),
        members: g
            .members
            .values()
            .map(|m| MemberRecord {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout.as_millis() as u64,
                rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                protocol_type: m.protocol_type.clone(),
                protocols: m
                    .protocols
                    .iter()
                    .map(|(n, b)| (n.clone(), b.to_vec()))
                    .collect(),
                assignment: m.assignment.to_vec(),
            })
            .collect(),
        state_since_ms: g.state_since_ms,
    }
}

fn restore(id: &str, r: GroupRecord) -> Group {
    let mut g = Group::new(id);
    g.generation = r.generation;
    g.protocol_type = r.protocol_type;
    g.protocol = r.protocol;
    g.leader = r.leader;
    g.state_since_ms = r.state_since_ms;
    let now = Instant::now();
    for (seq, m) in r.members.into_iter().enumerate() {
        if let Some(inst) = &m.instance_id {
            g.static_members.insert(inst.clone(), m.id.clone());
        }
        g.members.insert(
            m.id.clone(),
            Member {
                id: m.id,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout: Duration::from_millis(m.session_timeout_ms),
                rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                protocol_type: m.protocol_type,
                protocols: m
                    .protocols
                    .into_iter()
                    .map(|(n, b)| (n, Bytes::from(b)))
                    .collect(),
                assignment: Bytes::from(m.assignment),
                last_seen: now,
                joined_seq: seq as u64,
                join_waiter: None,
                sync_waiter: None,
            },
        );
    }
    g.join_counter = g.members.len() as u64;
    g.state = if g.members.is_empty() {
        GroupState::Empty
    } else {
        GroupState::Stable
    };
    g
}

impl Inner {
    /// Persists the group's metadata; a failure is logged, the in-memory state stays authoritative for now.
    fn persist_group(&mut self, group_id: &str) {
        let Some(g) = self.groups.get(group_id) else {
            return;
        };
        let change = Change::Group {
            group: group_id.to_string(),
            value: Some(record_of(g)),
        };
        if let Err(e) = self.store.write(&[change]) {
            tracing::error!(group = group_id, error = %e, "cannot persist group metadata");
        }
    }
}

impl GroupCoordinator {
    pub fn open(
        data_dir: &std::path::Path,
        clean: bool,
        settings: GroupSettings,
    ) -> Result<Self, StorageError> {
        let (store, loaded) = GroupStore::open(data_dir, clean)?;
        let groups = groups_from(loaded);
        tracing::info!(groups = groups.len(), "group coordinator loaded");
        Ok(Self::with_store(store, groups, settings))
    }

    fn with_store(
        store: GroupStore,
        groups: HashMap<String, Group>,
        settings: GroupSettings,
    ) -> Self {
        GroupCoordinator {
            inner: Mutex::new(Inner { groups, store }),
            settings,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Periodic work on the store's own log (flush, compaction, checkpoint) and its clean close; None in a
    /// cluster, where there is no log.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut runnel_storage::PartitionLog) -> T) -> Option<T> {
        let mut inner = self.lock();
        inner.store.log_mut().map(f)
    }
}

/// The groups a replay (or a cluster load) found: metadata, committed offsets and open transactions' offsets.
fn groups_from(loaded: Loaded) -> HashMap<String, Group> {
    let mut groups: HashMap<String, Group> = HashMap::new();
    for (id, rec) in loaded.groups {
        groups.insert(id.clone(), restore(&id, rec));
    }
    for ((g, topic, partition), offset) in loaded.offsets {
        groups
            .entry(g.clone())
            .or_insert_with(|| Group::new(&g))
            .offsets
            .insert((topic, partition), offset);
    }
    for ((g, pid, topic, partition), offset) in loaded.pending {
        groups
            .entry(g.clone())
            .or_insert_with(|| Group::new(&g))
            .pending_txn
            .entry(pid)
            .or_default()
            .insert((topic, partition), offset);
    }
    groups
}
