//! One classic consumer group: its members, generation and state, and the rules of a rebalance.
//!
//! States follow Kafka's classic protocol: Empty → PreparingRebalance (members (re)join) → CompletingRebalance
//! (the leader computes the assignment) → Stable (everyone has it), and back to PreparingRebalance whenever
//! membership or subscriptions change. Requests that must wait for the rebalance hold a oneshot receiver; the
//! group completes the senders.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// What a JoinGroup request is answered with.
#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, metadata): only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
    pub skip_assignment: bool,
}

/// What a SyncGroup request is answered with.
#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (protocol name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_seen: Instant,
    /// Order of joining: the first member becomes leader when there is none.
    pub joined_seq: u64,
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
    /// Completes a waiting join or sync with an error (the member was removed or fenced).
    pub fn fail_waiters(&mut self, error: i16) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(JoinOutcome {
                error,
                member_id: self.id.clone(),
                generation: -1,
                ..Default::default()
            });
        }
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(SyncOutcome {
                error,
                ..Default::default()
            });
        }
    }
}

/// A committed offset as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp: i64,
}

pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, valid until the instant given.
    pub pending: HashMap<String, Instant>,
    /// group.instance.id → member id, for static members.
    pub static_members: HashMap<String, String>,
    /// When a rebalance in PreparingRebalance completes even if members are missing.
    pub rebalance_deadline: Option<Instant>,
    /// While set, an initial rebalance waits for more members even if everyone known has joined.
    pub initial_delay_until: Option<Instant>,
    /// Wall-clock ms of the last state change (offset retention counts from the group becoming empty).
    pub state_since_ms: i64,
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Offsets committed by open transactions, by producer id; visible only once the transaction commits.
    pub pending_txn: BTreeMap<i64, BTreeMap<(String, i32), CommittedOffset>>,
    pub join_counter: u64,
}

impl Group {
    /// Every member's id, instance id and metadata for the chosen protocol, as a JoinGroup answer lists
    /// them for the leader.
    pub fn member_list(&self) -> Vec<(String, Option<String>, Bytes)> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members
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

    pub fn new(id: &str) -> Self {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            state_since_ms: runnel_storage::now_ms(),
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
            join_counter: 0,
        }
    }

    pub fn set_state(&mut self, state: GroupState) {
        self.state = state;
        self.state_since_ms = runnel_storage::now_ms();
    }

    /// Protocols every member supports, in the first member's order.
    fn candidates(&self) -> Vec<String> {
        let mut it = self.members.values();
        let Some(first) = it.next() else {
            return Vec::new();
        };
        let mut c: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in self.members.values() {
            c.retain(|p| m.supports(p));
        }
        c
    }

    /// Whether a (new or changed) member's protocols are compatible with the rest of the group.
    pub fn accepts_protocols(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: Option<&str>,
    ) -> bool {
        let others: Vec<&Member> = self
            .members
            .values()
            .filter(|m| Some(m.id.as_str()) != except)
            .collect();
        if others.is_empty() {
            return true;
        }
        if self
            .protocol_type
            .as_deref()
            .is_some_and(|t| t != protocol_type)
        {
            return false;
        }
        protocols
            .iter()
            .any(|(p, _)| others.iter().all(|m| m.supports(p)))
    }

    /// The protocol with the most first-choice votes among those every member supports.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates = self.candidates();
        let mut votes: Vec<(String, usize)> = candidates.iter().map(|c| (c.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some(choice) = m.protocols.iter().find(|(n, _)| candidates.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(c, _)| *c == choice.0) {
                    v.1 += 1;
                }
            }
        }
        // Stable max: the earliest candidate wins ties.
        let mut best: Option<(String, usize)> = None;
        for (c, n) in votes {
            if best.as_ref().is_none_or(|(_, b)| n > *b) {
                best = Some((c, n));
            }
        }
        best.map(|(c, _)| c)
    }

    pub fn all_joined(&self) -> bool {
        self.members.values().all(|m| m.join_waiter.is_some())
    }

    pub fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::from_secs(60))
    }

    /// Moves to PreparingRebalance; members waiting on a sync learn that a new rebalance began.
    pub fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        for m in self.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncOutcome {
                    error: kafka_protocol::error::ResponseError::RebalanceInProgress.code(),
                    ..Default::default()
                });
            }
        }
        let was_empty = self.state == GroupState::Empty;
        self.set_state(GroupState::PreparingRebalance);
        let timeout = self.max_rebalance_timeout();
        self.rebalance_deadline = Some(now + timeout);
        self.initial_delay_until = if was_empty && !initial_delay.is_zero() {
            Some(now + initial_delay.min(timeout))
        } else {
            None
        };
    }

    /// Ends the join phase: drops members that did not rejoin, bumps the generation, picks protocol and
    /// leader, and answers every waiting JoinGroup. Returns the member ids removed.
    pub fn complete_join(&mut self) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove_member(
                id,
                kafka_protocol::error::ResponseError::UnknownMemberId.code(),
            );
        }
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        self.generation += 1;
        if self.members.is_empty() {
            // The protocol type stays, as in Kafka's GroupMetadata: an emptied consumer group still lists as
            // "consumer" (only a group that never had members, one made by offset commits, lists as "").
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty);
            return gone;
        }
        self.protocol = self.select_protocol();
        self.protocol_type = self
            .members
            .values()
            .next()
            .map(|m| m.protocol_type.clone());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self
                .members
                .values()
                .min_by_key(|m| m.joined_seq)
                .map(|m| m.id.clone());
        }
        self.set_state(GroupState::CompletingRebalance);
        let leader = self.leader.clone().unwrap_or_default();
        let all = self.member_list();
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinOutcome {
                    error: 0,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: Some(self.protocol.clone().unwrap_or_default()),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members: if m.id == leader {
                        all.clone()
                    } else {
                        Vec::new()
                    },
                    skip_assignment: false,
                });
            }
        }
        gone
    }

    /// Removes a member, failing anything it waits on with `error`.
    pub fn remove_member(&mut self, id: &str, error: i16) -> Option<Member> {
        let mut m = self.members.remove(id)?;
        m.fail_waiters(error);
        if let Some(inst) = &m.instance_id {
            if self.static_members.get(inst).is_some_and(|mid| mid == id) {
                self.static_members.remove(inst);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        Some(m)
    }

    /// Topics the members subscribed to, read from their consumer-protocol metadata.
    pub fn subscribed_topics(&self) -> Vec<String> {
        use kafka_protocol::messages::ConsumerProtocolSubscription;
        use kafka_protocol::protocol::Decodable;
        let mut topics = Vec::new();
        if self.protocol_type.as_deref() != Some("consumer") {
            return topics;
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        for m in self.members.values() {
            let mut meta = m.metadata_for(&protocol);
            if meta.len() < 2 {
                continue;
            }
            let version = i16::from_be_bytes([meta[0], meta[1]]);
            let _ = bytes::Buf::get_i16(&mut meta);
            if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut meta, version) {
                topics.extend(sub.topics.iter().map(|t| t.to_string()));
            }
        }
        topics.sort();
        topics.dedup();
        topics
    }
}
