//! The group coordinator: every classic group of this broker behind one lock, its durable store, and the
//! timers (session expiry, rebalance deadlines) driven by [`GroupCoordinator::tick`].
//!
//! Requests that must wait for a rebalance get a [`Pending::Wait`] receiver and await it after the lock is
//! released; the group completes it when the rebalance moves on. Error codes are those Kafka's classic
//! coordinator sends in the same situation.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use runnel_storage::StorageError;
use tokio::sync::oneshot;

use super::group::{CommittedOffset, Group, GroupState, JoinOutcome, Member, SyncOutcome};
use super::store::{Change, GroupRecord, GroupStore, MemberRecord};

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
        tracing::info!(groups = groups.len(), "group coordinator loaded");
        Ok(GroupCoordinator {
            inner: Mutex::new(Inner { groups, store }),
            settings,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn join_error(member_id: &str, error: ResponseError) -> Pending<JoinOutcome> {
        Pending::Ready(JoinOutcome {
            error: error.code(),
            member_id: member_id.to_string(),
            generation: -1,
            ..Default::default()
        })
    }

    pub fn join(&self, p: JoinParams) -> Pending<JoinOutcome> {
        let now = Instant::now();
        if p.group_id.is_empty() {
            return Self::join_error(&p.member_id, ResponseError::InvalidGroupId);
        }
        let session = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        if session < self.settings.min_session || session > self.settings.max_session {
            return Self::join_error(&p.member_id, ResponseError::InvalidSessionTimeout);
        }
        let mut inner = self.lock();
        // A member id for a group that does not exist is unknown; nothing is created (as in Kafka).
        if !p.member_id.is_empty() && !inner.groups.contains_key(&p.group_id) {
            return Self::join_error(&p.member_id, ResponseError::UnknownMemberId);
        }
        if p.protocols.is_empty() || p.protocol_type.is_empty() {
            return Self::join_error(&p.member_id, ResponseError::InconsistentGroupProtocol);
        }
        let group = inner
            .groups
            .entry(p.group_id.clone())
            .or_insert_with(|| Group::new(&p.group_id));
        if group.state == GroupState::Dead {
            return Self::join_error(&p.member_id, ResponseError::CoordinatorNotAvailable);
        }
        let known = (!p.member_id.is_empty()).then_some(p.member_id.as_str());
        if !group.accepts_protocols(&p.protocol_type, &p.protocols, known) {
            return Self::join_error(&p.member_id, ResponseError::InconsistentGroupProtocol);
        }
        let result = if p.member_id.is_empty() {
            let static_old = p
                .instance_id
                .as_ref()
                .and_then(|i| group.static_members.get(i).cloned());
            if let Some(old) = static_old {
                self.static_rejoin(group, &old, p, now)
            } else if group.members.len() + group.pending.len() >= self.settings.max_size {
                Self::join_error("", ResponseError::GroupMaxSizeReached)
            } else if p.instance_id.is_none() && p.version >= 4 {
                // KIP-394: hand out the id first, so a client retrying a lost response does not leak members.
                let id = format!("{}-{}", p.client_id, uuid::Uuid::new_v4());
                group.pending.insert(id.clone(), now + session);
                Self::join_error(&id, ResponseError::MemberIdRequired)
            } else {
                let base = p.instance_id.clone().unwrap_or_else(|| p.client_id.clone());
                let id = format!("{base}-{}", uuid::Uuid::new_v4());
                self.add_member(group, id, p, now)
            }
        } else if group.pending.remove(&p.member_id).is_some() {
            if group.members.len() >= self.settings.max_size {
                Self::join_error(&p.member_id, ResponseError::GroupMaxSizeReached)
            } else {
                let id = p.member_id.clone();
                self.add_member(group, id, p, now)
            }
        } else if let Some(code) = instance_mismatch(group, p.instance_id.as_deref(), &p.member_id)
        {
            Pending::Ready(JoinOutcome {
                error: code,
                member_id: p.member_id.clone(),
                generation: -1,
                ..Default::default()
            })
        } else if group.members.contains_key(&p.member_id) {
            self.rejoin(group, p, now)
        } else {
            Self::join_error(&p.member_id, ResponseError::UnknownMemberId)
        };
        result
    }

    fn new_member(id: String, p: &JoinParams, now: Instant, seq: u64) -> Member {
        let session = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        let rebalance = if p.version == 0 || p.rebalance_timeout_ms <= 0 {
            session
        } else {
            Duration::from_millis(p.rebalance_timeout_ms as u64)
        };
        Member {
            id,
            instance_id: p.instance_id.clone(),
            client_id: p.client_id.clone(),
            client_host: p.client_host.clone(),
            session_timeout: session,
            rebalance_timeout: rebalance,
            protocol_type: p.protocol_type.clone(),
            protocols: p.protocols.clone(),
            assignment: Bytes::new(),
            last_seen: now,
            joined_seq: seq,
            join_waiter: None,
            sync_waiter: None,
        }
    }

    fn add_member(
        &self,
        group: &mut Group,
        id: String,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinOutcome> {
        group.join_counter += 1;
        let mut member = Self::new_member(id.clone(), &p, now, group.join_counter);
        let (tx, rx) = oneshot::channel();
        member.join_waiter = Some(tx);
        if let Some(inst) = &p.instance_id {
            group.static_members.insert(inst.clone(), id.clone());
        }
        group.members.insert(id, member);
        match group.state {
            GroupState::PreparingRebalance => {
                // A member arriving during the initial delay extends it, up to the rebalance deadline.
                if let (Some(_), Some(deadline)) =
                    (group.initial_delay_until, group.rebalance_deadline)
                {
                    group.initial_delay_until =
                        Some((now + self.settings.initial_delay).min(deadline));
                }
            }
            _ => group.prepare_rebalance(now, self.settings.initial_delay),
        }
        Self::maybe_complete_join(group, now);
        Pending::Wait(rx)
    }

    fn rejoin(&self, group: &mut Group, p: JoinParams, now: Instant) -> Pending<JoinOutcome> {
        let generation = group.generation;
        let leader = group.leader.clone().unwrap_or_default();
        let protocol = group.protocol.clone();
        let protocol_type = group.protocol_type.clone();
        let state = group.state;
        let Some(m) = group.members.get_mut(&p.member_id) else {
            return Self::join_error(&p.member_id, ResponseError::UnknownMemberId);
        };
        m.last_seen = now;
        let changed = m.protocols != p.protocols || m.protocol_type != p.protocol_type;
        m.protocols = p.protocols.clone();
        m.protocol_type = p.protocol_type.clone();
        m.session_timeout = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        if p.version > 0 && p.rebalance_timeout_ms > 0 {
            m.rebalance_timeout = Duration::from_millis(p.rebalance_timeout_ms as u64);
        }
        let is_leader = m.id == leader;
        let unchanged_answer = |members| {
            Pending::Ready(JoinOutcome {
                error: 0,
                generation,
                protocol_type: protocol_type.clone(),
                protocol_name: protocol.clone(),
                leader: leader.clone(),
                member_id: p.member_id.clone(),
                members,
                skip_assignment: false,
            })
        };
        match state {
            GroupState::CompletingRebalance if !changed => {
                let members = if is_leader {
                    Self::member_list(group)
                } else {
                    Vec::new()
                };
                return unchanged_answer(members);
            }
            GroupState::Stable if !changed && !is_leader => return unchanged_answer(Vec::new()),
            _ => {}
        }
        let (tx, rx) = oneshot::channel();
        if let Some(m) = group.members.get_mut(&p.member_id) {
            if let Some(old) = m.join_waiter.replace(tx) {
                drop(old);
            }
        }
        if group.state != GroupState::PreparingRebalance {
            group.prepare_rebalance(now, Duration::ZERO);
        }
        Self::maybe_complete_join(group, now);
        Pending::Wait(rx)
    }

    fn static_rejoin(
        &self,
        group: &mut Group,
        old_id: &str,
        p: JoinParams,
        now: Instant,
    ) -> Pending<JoinOutcome> {
        let inst = p.instance_id.clone().unwrap_or_default();
        let new_id = format!("{inst}-{}", uuid::Uuid::new_v4());
        let Some(mut m) = group.members.remove(old_id) else {
            group.static_members.remove(&inst);
            group.join_counter += 1;
            return self.add_member(group, new_id, p, now);
        };
        // The old incarnation is fenced: whatever it waits on fails.
        m.fail_waiters(ResponseError::FencedInstanceId.code());
        let changed = m.protocols != p.protocols || m.protocol_type != p.protocol_type;
        m.id = new_id.clone();
        m.protocols = p.protocols.clone();
        m.protocol_type = p.protocol_type.clone();
        m.client_id = p.client_id.clone();
        m.client_host = p.client_host.clone();
        m.session_timeout = Duration::from_millis(p.session_timeout_ms.max(0) as u64);
        m.last_seen = now;
        group.static_members.insert(inst, new_id.clone());
        if group.leader.as_deref() == Some(old_id) {
            group.leader = Some(new_id.clone());
        }
        let is_leader = group.leader.as_deref() == Some(new_id.as_str());
        if group.state == GroupState::Stable && !changed {
            group.members.insert(new_id.clone(), m);
            // Same subscription, same assignment: no rebalance (KIP-345).
            let members = if is_leader {
                Self::member_list(group)
            } else {
                Vec::new()
            };
            return Pending::Ready(JoinOutcome {
                error: 0,
                generation: group.generation,
                protocol_type: group.protocol_type.clone(),
                protocol_name: group.protocol.clone(),
                leader: group.leader.clone().unwrap_or_default(),
                member_id: new_id,
                members,
                skip_assignment: is_leader && p.version >= 9,
            });
        }
        let (tx, rx) = oneshot::channel();
        m.join_waiter = Some(tx);
        group.members.insert(new_id, m);
        if group.state != GroupState::PreparingRebalance {
            group.prepare_rebalance(now, Duration::ZERO);
        }
        Self::maybe_complete_join(group, now);
        Pending::Wait(rx)
    }

    fn member_list(group: &Group) -> Vec<(String, Option<String>, Bytes)> {
        let protocol = group.protocol.clone().unwrap_or_default();
        group
            .members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.metadata_for(&protocol),
                )
            })
            .collect()
    }

    fn maybe_complete_join(group: &mut Group, now: Instant) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        let delaying = group.initial_delay_until.is_some_and(|t| now < t);
        let overdue = group.rebalance_deadline.is_some_and(|t| now >= t);
        if (group.all_joined() && !delaying) || overdue {
            group.complete_join();
        }
    }

    pub fn sync(&self, p: SyncParams) -> Pending<SyncOutcome> {
        let fail = |e: ResponseError| {
            Pending::Ready(SyncOutcome {
                error: e.code(),
                ..Default::default()
            })
        };
        let mut inner = self.lock();
        let Some(group) = inner.groups.get_mut(&p.group_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if let Some(c) = instance_mismatch(group, p.instance_id.as_deref(), &p.member_id) {
            return Pending::Ready(SyncOutcome {
                error: c,
                ..Default::default()
            });
        }
        if !group.members.contains_key(&p.member_id) {
            return fail(ResponseError::UnknownMemberId);
        }
        if p.generation != group.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        let type_mismatch = p
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != group.protocol_type.as_ref());
        let name_mismatch = p
            .protocol_name
            .as_ref()
            .is_some_and(|n| Some(n) != group.protocol.as_ref());
        if type_mismatch || name_mismatch {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        let answer = |g: &Group, assignment: Bytes| SyncOutcome {
            error: 0,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            assignment,
        };
        match group.state {
            GroupState::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            GroupState::Stable => {
                let assignment = group
                    .members
                    .get(&p.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                if let Some(m) = group.members.get_mut(&p.member_id) {
                    m.last_seen = Instant::now();
                }
                Pending::Ready(answer(group, assignment))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.members.get_mut(&p.member_id) {
                    m.sync_waiter = Some(tx);
                    m.last_seen = Instant::now();
                }
                if group.leader.as_deref() == Some(p.member_id.as_str()) {
                    let given: HashMap<String, Bytes> = p.assignments.into_iter().collect();
                    for m in group.members.values_mut() {
                        m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                    }
                    group.set_state(GroupState::Stable);
                    let (protocol_type, protocol_name) =
                        (group.protocol_type.clone(), group.protocol.clone());
                    for m in group.members.values_mut() {
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(SyncOutcome {
                                error: 0,
                                protocol_type: protocol_type.clone(),
                                protocol_name: protocol_name.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                    let gid = group.id.clone();
                    inner.persist_group(&gid);
                }
                Pending::Wait(rx)
            }
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> i16 {
        let mut inner = self.lock();
        let Some(group) = inner.groups.get_mut(group_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        if let Some(c) = instance_mismatch(group, instance_id, member_id) {
            return c;
        }
        let state = group.state;
        let current = group.generation;
        let Some(m) = group.members.get_mut(member_id) else {
            return code(ResponseError::UnknownMemberId);
        };
        m.last_seen = Instant::now();
        if generation != current {
            return code(ResponseError::IllegalGeneration);
        }
        match state {
            GroupState::PreparingRebalance => code(ResponseError::RebalanceInProgress),
            GroupState::Empty | GroupState::Dead => code(ResponseError::UnknownMemberId),
            _ => 0,
        }
    }

    /// LeaveGroup for several members; returns a code per member (by member id or instance id).
    pub fn leave(&self, group_id: &str, members: &[(String, Option<String>)]) -> Vec<i16> {
        let mut inner = self.lock();
        let Some(group) = inner.groups.get_mut(group_id) else {
            return members
                .iter()
                .map(|_| code(ResponseError::UnknownMemberId))
                .collect();
        };
        let now = Instant::now();
        let mut removed = false;
        let codes = members
            .iter()
            .map(|(member_id, instance)| {
                let target = match instance {
                    Some(inst) => match group.static_members.get(inst) {
                        Some(mid) if member_id.is_empty() || mid == member_id => Some(mid.clone()),
                        Some(_) => return code(ResponseError::FencedInstanceId),
                        None => None,
                    },
                    None => group
                        .members
                        .contains_key(member_id)
                        .then(|| member_id.clone()),
                };
                match target {
                    Some(id) => {
                        group.remove_member(&id, code(ResponseError::UnknownMemberId));
                        removed = true;
                        0
                    }
                    None => code(ResponseError::UnknownMemberId),
                }
            })
            .collect();
        if removed {
            match group.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    group.prepare_rebalance(now, Duration::ZERO);
                    Self::maybe_complete_join(group, now);
                }
                GroupState::PreparingRebalance => Self::maybe_complete_join(group, now),
                _ => {}
            }
            if group.members.is_empty() && group.state == GroupState::PreparingRebalance {
                group.complete_join();
            }
            let gid = group.id.clone();
            inner.persist_group(&gid);
        }
        codes
    }

    /// OffsetCommit: a code per (topic, partition), in request order.
    pub fn commit(
        &self,
        p: CommitParams,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> PartitionCodes {
        let mut inner = self.lock();
        // Kafka's order: static instance, simple commit to an empty group, member, generation, state.
        let verdict = match inner.groups.get_mut(&p.group_id) {
            None if p.generation < 0 => 0,
            None => code(ResponseError::IllegalGeneration),
            Some(g) => {
                if let Some(c) = instance_mismatch(g, p.instance_id.as_deref(), &p.member_id) {
                    c
                } else if p.generation < 0 && g.state == GroupState::Empty {
                    0
                } else if !g.members.contains_key(&p.member_id) {
                    code(ResponseError::UnknownMemberId)
                } else if p.generation != g.generation {
                    code(ResponseError::IllegalGeneration)
                } else if g.state == GroupState::CompletingRebalance {
                    code(ResponseError::RebalanceInProgress)
                } else {
                    if let Some(m) = g.members.get_mut(&p.member_id) {
                        m.last_seen = Instant::now();
                    }
                    0
                }
            }
        };
        let stored = self.store_offsets(&mut inner, &p, verdict, None, partition_exists);
        if !stored.1.is_empty() {
            let group = inner
                .groups
                .entry(p.group_id.clone())
                .or_insert_with(|| Group::new(&p.group_id));
            group.offsets.extend(stored.1);
        }
        stored.0
    }

    /// Checks each partition of a commit (after the request-level `verdict`) and persists the offsets that
    /// pass, as committed offsets or, with a producer id, as that transaction's pending offsets. Returns the
    /// code per partition and what was stored (nothing when the store refused the write).
    fn store_offsets(
        &self,
        inner: &mut Inner,
        p: &CommitParams,
        verdict: i16,
        producer_id: Option<i64>,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> (PartitionCodes, StoredOffsets) {
        let now = runnel_storage::now_ms();
        let mut stored = Vec::new();
        let mut result: PartitionCodes = p
            .topics
            .iter()
            .map(|(topic, parts)| {
                let codes = parts
                    .iter()
                    .map(|e| {
                        if verdict != 0 {
                            return (e.partition, verdict);
                        }
                        if e.metadata
                            .as_ref()
                            .is_some_and(|m| m.len() > self.settings.metadata_max_bytes)
                        {
                            return (e.partition, code(ResponseError::OffsetMetadataTooLarge));
                        }
                        if !partition_exists(topic, e.partition) {
                            return (e.partition, code(ResponseError::UnknownTopicOrPartition));
                        }
                        let offset = CommittedOffset {
                            offset: e.offset,
                            leader_epoch: e.leader_epoch,
                            metadata: e.metadata.clone(),
                            commit_timestamp: now,
                        };
                        stored.push(((topic.clone(), e.partition), offset));
                        (e.partition, 0)
                    })
                    .collect();
                (topic.clone(), codes)
            })
            .collect();
        let changes: Vec<Change> = stored
            .iter()
            .map(|((topic, partition), offset)| match producer_id {
                Some(pid) => Change::TxnOffset {
                    group: p.group_id.clone(),
                    producer_id: pid,
                    topic: topic.clone(),
                    partition: *partition,
                    value: Some(offset.clone()),
                },
                None => Change::Offset {
                    group: p.group_id.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: Some(offset.clone()),
                },
            })
            .collect();
        if let Err(e) = inner.store.write(&changes) {
            tracing::error!(group = %p.group_id, error = %e, "cannot persist offset commit");
            for (_, codes) in &mut result {
                for c in codes.iter_mut().filter(|c| c.1 == 0) {
                    c.1 = code(ResponseError::CoordinatorNotAvailable);
                }
            }
            return (result, Vec::new());
        }
        (result, stored)
    }

    /// OffsetFetch: the committed offsets of the partitions asked for, or of every partition when None.
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
    ) -> FetchedOffsets {
        let inner = self.lock();
        let group = inner.groups.get(group_id);
        match topics {
            Some(list) => list
                .into_iter()
                .map(|(t, parts)| {
                    let found = parts
                        .into_iter()
                        .map(|p| {
                            (
                                p,
                                group.and_then(|g| g.offsets.get(&(t.clone(), p)).cloned()),
                            )
                        })
                        .collect();
                    (t, found)
                })
                .collect(),
            None => {
                let mut by_topic: FetchedOffsets = Vec::new();
                for ((t, p), o) in group.map(|g| g.offsets.iter()).into_iter().flatten() {
                    match by_topic.last_mut() {
                        Some((last, parts)) if last == t => parts.push((*p, Some(o.clone()))),
                        _ => by_topic.push((t.clone(), vec![(*p, Some(o.clone()))])),
                    }
                }
                by_topic
            }
        }
    }

    /// TxnOffsetCommit: offsets held back until the producer's transaction ends. Generation and member are
    /// checked like OffsetCommit's when given (v3+, KIP-447), so a zombie member cannot commit.
    pub fn txn_commit(
        &self,
        p: CommitParams,
        producer_id: i64,
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> PartitionCodes {
        let mut inner = self.lock();
        let checked = p.generation >= 0 || !p.member_id.is_empty();
        let verdict = match inner.groups.get(&p.group_id) {
            Some(g) if checked => {
                if let Some(c) = instance_mismatch(g, p.instance_id.as_deref(), &p.member_id) {
                    c
                } else if !g.members.contains_key(&p.member_id) {
                    code(ResponseError::UnknownMemberId)
                } else if p.generation != g.generation {
                    code(ResponseError::IllegalGeneration)
                } else {
                    0
                }
            }
            None if checked => code(ResponseError::IllegalGeneration),
            _ => 0,
        };
        let stored =
            self.store_offsets(&mut inner, &p, verdict, Some(producer_id), partition_exists);
        if !stored.1.is_empty() {
            let group = inner
                .groups
                .entry(p.group_id.clone())
                .or_insert_with(|| Group::new(&p.group_id));
            group
                .pending_txn
                .entry(producer_id)
                .or_default()
                .extend(stored.1);
        }
        stored.0
    }

    /// Ends a producer's transaction for a group: its pending offsets become committed, or are dropped.
    pub fn complete_txn(
        &self,
        group_id: &str,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), StorageError> {
        let mut inner = self.lock();
        let Some(pending) = inner
            .groups
            .get(group_id)
            .and_then(|g| g.pending_txn.get(&producer_id))
            .cloned()
        else {
            return Ok(());
        };
        let mut changes = Vec::new();
        for ((topic, partition), offset) in &pending {
            changes.push(Change::TxnOffset {
                group: group_id.to_string(),
                producer_id,
                topic: topic.clone(),
                partition: *partition,
                value: None,
            });
            if commit {
                changes.push(Change::Offset {
                    group: group_id.to_string(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: Some(offset.clone()),
                });
            }
        }
        inner.store.write(&changes)?;
        if let Some(g) = inner.groups.get_mut(group_id) {
            g.pending_txn.remove(&producer_id);
            if commit {
                g.offsets.extend(pending);
            }
        }
        Ok(())
    }

    /// True when an open transaction holds an offset for the partition (OffsetFetch with require_stable).
    pub fn has_pending(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let inner = self.lock();
        inner.groups.get(group_id).is_some_and(|g| {
            g.pending_txn
                .values()
                .any(|m| m.contains_key(&(topic.to_string(), partition)))
        })
    }

    /// (group id, protocol type, state) of every group, optionally only those in the given states.
    pub fn list(&self, states: &[String]) -> Vec<(String, String, &'static str)> {
        let inner = self.lock();
        let mut out: Vec<(String, String, &'static str)> = inner
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                )
            })
            .collect();
        out.sort();
        out
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let inner = self.lock();
        let g = inner.groups.get(group_id)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        let stable = g.state == GroupState::Stable;
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        if stable {
                            m.metadata_for(&protocol)
                        } else {
                            Bytes::new()
                        },
                        if stable {
                            m.assignment.clone()
                        } else {
                            Bytes::new()
                        },
                    )
                })
                .collect(),
        })
    }

    /// DeleteGroups for one group: only groups without members can go.
    pub fn delete_group(&self, group_id: &str) -> i16 {
        let mut inner = self.lock();
        let Some(g) = inner.groups.get(group_id) else {
            return code(ResponseError::GroupIdNotFound);
        };
        if !matches!(g.state, GroupState::Empty | GroupState::Dead) {
            return code(ResponseError::NonEmptyGroup);
        }
        let mut changes: Vec<Change> = g
            .offsets
            .keys()
            .map(|(t, p)| Change::Offset {
                group: group_id.to_string(),
                topic: t.clone(),
                partition: *p,
                value: None,
            })
            .collect();
        changes.push(Change::Group {
            group: group_id.to_string(),
            value: None,
        });
        if let Err(e) = inner.store.write(&changes) {
            tracing::error!(group = group_id, error = %e, "cannot persist group deletion");
            return code(ResponseError::CoordinatorNotAvailable);
        }
        inner.groups.remove(group_id);
        0
    }

    /// OffsetDelete: Err(top-level code) or a code per (topic, partition).
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> Result<PartitionCodes, i16> {
        let mut inner = self.lock();
        let Some(g) = inner.groups.get(group_id) else {
            return Err(code(ResponseError::GroupIdNotFound));
        };
        if g.protocol_type.as_deref().is_some_and(|t| t != "consumer") && !g.members.is_empty() {
            return Err(code(ResponseError::NonEmptyGroup));
        }
        let subscribed = if g.members.is_empty() {
            Vec::new()
        } else {
            g.subscribed_topics()
        };
        let mut changes = Vec::new();
        let result = topics
            .iter()
            .map(|(t, parts)| {
                let codes = parts
                    .iter()
                    .map(|p| {
                        if !partition_exists(t, *p) {
                            return (*p, code(ResponseError::UnknownTopicOrPartition));
                        }
                        if subscribed.contains(t) {
                            return (*p, code(ResponseError::GroupSubscribedToTopic));
                        }
                        changes.push(Change::Offset {
                            group: group_id.to_string(),
                            topic: t.clone(),
                            partition: *p,
                            value: None,
                        });
                        (*p, 0)
                    })
                    .collect();
                (t.clone(), codes)
            })
            .collect();
        if let Err(e) = inner.store.write(&changes) {
            tracing::error!(group = group_id, error = %e, "cannot persist offset deletion");
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        if let Some(g) = inner.groups.get_mut(group_id) {
            for c in changes {
                if let Change::Offset {
                    topic, partition, ..
                } = c
                {
                    g.offsets.remove(&(topic, partition));
                }
            }
        }
        Ok(result)
    }

    /// Timers: completes overdue rebalances and removes members whose session expired.
    pub fn tick(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let mut to_persist = Vec::new();
        for group in inner.groups.values_mut() {
            group.pending.retain(|_, until| *until > now);
            match group.state {
                GroupState::PreparingRebalance => {
                    if group.initial_delay_until.is_some_and(|t| now >= t) {
                        group.initial_delay_until = None;
                    }
                    // A member that died keeps no rebalance waiting past its session (as in Kafka): sessions
                    // run on during PreparingRebalance for members that have not rejoined yet.
                    let dead: Vec<String> = group
                        .members
                        .values()
                        .filter(|m| {
                            m.join_waiter.is_none()
                                && now.duration_since(m.last_seen) > m.session_timeout
                        })
                        .map(|m| m.id.clone())
                        .collect();
                    for id in &dead {
                        tracing::info!(group = %group.id, member = %id, "member session expired during a rebalance");
                        group.remove_member(id, code(ResponseError::UnknownMemberId));
                    }
                    let before = group.generation;
                    Self::maybe_complete_join(group, now);
                    if group.generation != before && group.state == GroupState::Empty {
                        to_persist.push(group.id.clone());
                    }
                }
                GroupState::Stable | GroupState::CompletingRebalance => {
                    let expired: Vec<String> = group
                        .members
                        .values()
                        .filter(|m| m.join_waiter.is_none() && m.sync_waiter.is_none())
                        .filter(|m| now.duration_since(m.last_seen) > m.session_timeout)
                        .map(|m| m.id.clone())
                        .collect();
                    if expired.is_empty() {
                        continue;
                    }
                    for id in &expired {
                        tracing::info!(group = %group.id, member = %id, "member session expired");
                        group.remove_member(id, code(ResponseError::UnknownMemberId));
                    }
                    group.prepare_rebalance(now, Duration::ZERO);
                    Self::maybe_complete_join(group, now);
                    if group.members.is_empty() {
                        group.complete_join();
                    }
                    to_persist.push(group.id.clone());
                }
                _ => {}
            }
        }
        for id in to_persist {
            inner.persist_group(&id);
        }
    }

    /// Deletes committed offsets past `offsets.retention.minutes`: for groups without members, counted from
    /// the later of the commit and the group becoming empty (Kafka's rule since 2.1).
    pub fn expire_offsets(&self) {
        let now = runnel_storage::now_ms();
        let retention = self.settings.offsets_retention_ms;
        let mut inner = self.lock();
        let mut changes = Vec::new();
        for g in inner.groups.values() {
            if g.state != GroupState::Empty {
                continue;
            }
            for ((t, p), o) in &g.offsets {
                let base = if g.protocol_type.is_some() {
                    g.state_since_ms.max(o.commit_timestamp)
                } else {
                    o.commit_timestamp
                };
                if base.saturating_add(retention) <= now {
                    changes.push(Change::Offset {
                        group: g.id.clone(),
                        topic: t.clone(),
                        partition: *p,
                        value: None,
                    });
                }
            }
        }
        if changes.is_empty() {
            return;
        }
        if let Err(e) = inner.store.write(&changes) {
            tracing::error!(error = %e, "cannot persist offset expiry");
            return;
        }
        for c in changes {
            if let Change::Offset {
                group,
                topic,
                partition,
                ..
            } = c
            {
                if let Some(g) = inner.groups.get_mut(&group) {
                    g.offsets.remove(&(topic, partition));
                }
            }
        }
        inner.groups.retain(|_, g| {
            !(g.state == GroupState::Empty && g.offsets.is_empty() && g.protocol_type.is_none())
        });
        tracing::debug!("expired committed offsets");
    }

    /// Periodic work on the store's own log (flush, compaction, checkpoint) and its clean close.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut runnel_storage::PartitionLog) -> T) -> T {
        let mut inner = self.lock();
        f(inner.store.log_mut())
    }
}
