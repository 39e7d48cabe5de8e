//! Group membership: JoinGroup (including the KIP-394 member-id round trip and KIP-345 static rejoins),
//! SyncGroup, Heartbeat and LeaveGroup, and [`GroupCoordinator::tick`], which drives the rebalance
//! deadlines and session timers. Everything that moves a group between its rebalance states lives here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;

use super::{code, instance_mismatch, GroupCoordinator, JoinParams, Pending, SyncParams};
use crate::groups::group::{Group, GroupState, JoinOutcome, Member, SyncOutcome};

impl GroupCoordinator {
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
                    group.member_list()
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
                group.member_list()
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
}
