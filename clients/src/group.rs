//! Consumer group membership with the classic protocol: join, the leader's assignment (range, round-robin
//! or cooperative-sticky), sync, and a background heartbeat that flags when the group starts rebalancing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, GroupId, HeartbeatRequest,
    JoinGroupRequest, LeaveGroupRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::cluster::{Cluster, CoordinatorType};
use crate::connection::Connection;
use crate::error::{ClientError, Result};
use crate::TopicPartition;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Range,
    RoundRobin,
    CooperativeSticky,
}

impl Assignor {
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::CooperativeSticky => "cooperative-sticky",
        }
    }
    fn from_name(n: &str) -> Option<Self> {
        [
            Assignor::Range,
            Assignor::RoundRobin,
            Assignor::CooperativeSticky,
        ]
        .into_iter()
        .find(|a| a.name() == n)
    }
}

impl std::str::FromStr for Assignor {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self> {
        Assignor::from_name(&s.to_ascii_lowercase()).ok_or_else(|| {
            ClientError::Invalid(format!(
                "unknown assignor '{s}' (range, roundrobin, cooperative-sticky)"
            ))
        })
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// ConsumerProtocolSubscription, version-prefixed as on the wire (v1: with owned partitions).
pub fn encode_subscription(topics: &[String], owned: &[TopicPartition]) -> Bytes {
    let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in owned {
        grouped.entry(t).or_default().push(*p);
    }
    let sub = ConsumerProtocolSubscription::default()
        .with_topics(topics.iter().map(|t| sb(t)).collect())
        .with_owned_partitions(
            grouped
                .into_iter()
                .map(|(t, ps)| {
                    OwnedTopic::default()
                        .with_topic(TopicName(sb(t)))
                        .with_partitions(ps)
                })
                .collect(),
        );
    let mut b = BytesMut::new();
    b.put_i16(1);
    let _ = sub.encode(&mut b, 1);
    b.freeze()
}

pub fn decode_subscription(mut meta: Bytes) -> Option<(Vec<String>, Vec<TopicPartition>)> {
    if meta.len() < 2 {
        return None;
    }
    let version = meta.get_i16();
    let sub = ConsumerProtocolSubscription::decode(&mut meta, version.clamp(0, 3)).ok()?;
    let owned = sub
        .owned_partitions
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), *p)))
        .collect();
    Some((sub.topics.iter().map(|t| t.to_string()).collect(), owned))
}

pub fn encode_assignment(parts: &[TopicPartition]) -> Bytes {
    let mut grouped: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        grouped.entry(t).or_default().push(*p);
    }
    let a = ConsumerProtocolAssignment::default().with_assigned_partitions(
        grouped
            .into_iter()
            .map(|(t, ps)| {
                AssignedTopic::default()
                    .with_topic(TopicName(sb(t)))
                    .with_partitions(ps)
            })
            .collect(),
    );
    let mut b = BytesMut::new();
    b.put_i16(1);
    let _ = a.encode(&mut b, 1);
    b.freeze()
}

pub fn decode_assignment(mut bytes: Bytes) -> Vec<TopicPartition> {
    if bytes.len() < 2 {
        return Vec::new();
    }
    let version = bytes.get_i16();
    match ConsumerProtocolAssignment::decode(&mut bytes, version.clamp(0, 3)) {
        Ok(a) => a
            .assigned_partitions
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), *p)))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Computes the leader's assignment. `members`: (member id, subscribed topics, owned partitions);
/// `partitions`: partition count per topic.
pub fn assign(
    assignor: Assignor,
    members: &[(String, Vec<String>, Vec<TopicPartition>)],
    partitions: &HashMap<String, usize>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out: BTreeMap<String, Vec<TopicPartition>> = members
        .iter()
        .map(|(m, _, _)| (m.clone(), Vec::new()))
        .collect();
    let mut topics: Vec<&String> = partitions.keys().collect();
    topics.sort();
    match assignor {
        Assignor::Range => {
            for t in topics {
                let mut subs: Vec<&String> = members
                    .iter()
                    .filter(|(_, ts, _)| ts.contains(t))
                    .map(|(m, _, _)| m)
                    .collect();
                subs.sort();
                if subs.is_empty() {
                    continue;
                }
                let n = partitions[t];
                let (per, extra) = (n / subs.len(), n % subs.len());
                let mut next = 0;
                for (i, m) in subs.iter().enumerate() {
                    let count = per + usize::from(i < extra);
                    for p in next..next + count {
                        out.entry((*m).clone())
                            .or_default()
                            .push((t.clone(), p as i32));
                    }
                    next += count;
                }
            }
        }
        Assignor::RoundRobin => {
            let mut sorted: Vec<&String> = members.iter().map(|(m, _, _)| m).collect();
            sorted.sort();
            let mut i = 0usize;
            for t in topics {
                for p in 0..partitions[t] {
                    // Next member (in order) subscribed to this topic.
                    for _ in 0..sorted.len() {
                        let m = sorted[i % sorted.len()];
                        i += 1;
                        if members.iter().any(|(id, ts, _)| id == m && ts.contains(t)) {
                            out.entry(m.clone())
                                .or_default()
                                .push((t.clone(), p as i32));
                            break;
                        }
                    }
                }
            }
        }
        Assignor::CooperativeSticky => {
            // Balanced and sticky: members keep what they own up to their quota; the rest goes to the least
            // loaded. A partition moving between two members is left out of this round (its owner revokes
            // it first and rejoins), as KIP-429's cooperative protocol requires.
            let all: Vec<TopicPartition> = topics
                .iter()
                .flat_map(|t| (0..partitions[*t]).map(move |p| ((*t).clone(), p as i32)))
                .collect();
            let mut owner: HashMap<&TopicPartition, &String> = HashMap::new();
            for (m, _, owned) in members {
                for tp in owned {
                    owner.entry(tp).or_insert(m);
                }
            }
            let eligible = |m: &String, tp: &TopicPartition| {
                members
                    .iter()
                    .any(|(id, ts, _)| id == m && ts.contains(&tp.0))
            };
            let n_members = members.len().max(1);
            let quota_hi = all.len().div_ceil(n_members);
            let mut target: BTreeMap<String, Vec<TopicPartition>> = out.clone();
            let mut unassigned = Vec::new();
            for tp in &all {
                match owner.get(tp) {
                    Some(m)
                        if eligible(m, tp)
                            && target.get(*m).is_some_and(|v| v.len() < quota_hi) =>
                    {
                        target.entry((*m).clone()).or_default().push(tp.clone());
                    }
                    _ => unassigned.push(tp.clone()),
                }
            }
            for tp in unassigned {
                let least = target
                    .iter()
                    .filter(|(m, _)| eligible(m, &tp))
                    .min_by_key(|(m, v)| (v.len(), (*m).clone()))
                    .map(|(m, _)| m.clone());
                if let Some(m) = least {
                    target.entry(m).or_default().push(tp);
                }
            }
            for (m, parts) in target {
                let keep: Vec<TopicPartition> = parts
                    .into_iter()
                    .filter(|tp| owner.get(tp).is_none_or(|o| **o == m))
                    .collect();
                out.insert(m, keep);
            }
        }
    }
    out
}

/// Group settings of a consumer.
#[derive(Debug, Clone)]
pub struct GroupSettings {
    pub group_id: String,
    pub instance_id: Option<String>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub assignors: Vec<Assignor>,
}

/// This consumer's membership in its group.
pub struct GroupMember {
    pub settings: GroupSettings,
    pub member_id: String,
    pub generation: i32,
    pub protocol: Option<Assignor>,
    coordinator: Option<Arc<Connection>>,
    rejoin: Arc<AtomicBool>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    /// Shared with the heartbeat task: (generation, member id) it beats for.
    beat_identity: Arc<Mutex<(i32, String)>>,
}

impl GroupMember {
    pub fn new(settings: GroupSettings) -> Self {
        GroupMember {
            settings,
            member_id: String::new(),
            generation: -1,
            protocol: None,
            coordinator: None,
            rejoin: Arc::new(AtomicBool::new(true)),
            heartbeat: None,
            beat_identity: Arc::new(Mutex::new((-1, String::new()))),
        }
    }

    pub fn needs_rejoin(&self) -> bool {
        self.rejoin.load(Ordering::SeqCst)
    }

    pub fn request_rejoin(&self) {
        self.rejoin.store(true, Ordering::SeqCst);
    }

    async fn coordinator(&mut self, cluster: &Cluster) -> Result<Arc<Connection>> {
        if let Some(c) = &self.coordinator {
            if c.is_alive() {
                return Ok(Arc::clone(c));
            }
        }
        let c = cluster
            .dedicated_coordinator(&self.settings.group_id, CoordinatorType::Group)
            .await?;
        self.coordinator = Some(Arc::clone(&c));
        Ok(c)
    }

    /// Joins (or rejoins) the group and returns this member's new assignment.
    pub async fn join(
        &mut self,
        cluster: &Cluster,
        topics: &[String],
        owned: &[TopicPartition],
    ) -> Result<Vec<TopicPartition>> {
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.join_once(cluster, topics, owned).await {
                Ok(a) => {
                    self.rejoin.store(false, Ordering::SeqCst);
                    return Ok(a);
                }
                Err(e) => {
                    let code = e.code();
                    if code == Some(ResponseError::UnknownMemberId.code()) {
                        self.member_id.clear();
                    }
                    if matches!(code, Some(c) if c == ResponseError::NotCoordinator.code() || c == ResponseError::CoordinatorNotAvailable.code())
                    {
                        self.coordinator = None;
                    }
                    let retry = e.is_retriable()
                        || matches!(code, Some(c) if c == ResponseError::UnknownMemberId.code() || c == ResponseError::IllegalGeneration.code() || c == ResponseError::RebalanceInProgress.code());
                    if !retry || attempts > 50 {
                        return Err(e);
                    }
                    tokio::time::sleep(cluster.config.retry_backoff).await;
                }
            }
        }
    }

    async fn join_once(
        &mut self,
        cluster: &Cluster,
        topics: &[String],
        owned: &[TopicPartition],
    ) -> Result<Vec<TopicPartition>> {
        // No heartbeat of the old generation may queue behind the JoinGroup and then ask for another rejoin.
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let conn = self.coordinator(cluster).await?;
        let metadata = encode_subscription(topics, owned);
        let protocols = self
            .settings
            .assignors
            .iter()
            .map(|a| {
                JoinGroupRequestProtocol::default()
                    .with_name(sb(a.name()))
                    .with_metadata(metadata.clone())
            })
            .collect();
        let mut req = JoinGroupRequest::default()
            .with_group_id(GroupId(sb(&self.settings.group_id)))
            .with_session_timeout_ms(self.settings.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(self.settings.rebalance_timeout.as_millis() as i32)
            .with_member_id(sb(&self.member_id))
            .with_group_instance_id(self.settings.instance_id.as_deref().map(sb))
            .with_protocol_type(sb("consumer"))
            .with_protocols(protocols);
        let mut resp = conn.call(&req).await?;
        if resp.error_code == ResponseError::MemberIdRequired.code() {
            self.member_id = resp.member_id.to_string();
            req.member_id = sb(&self.member_id);
            resp = conn.call(&req).await?;
        }
        if resp.error_code != 0 {
            return Err(ClientError::kafka(
                format!("JoinGroup({})", self.settings.group_id),
                resp.error_code,
            ));
        }
        self.member_id = resp.member_id.to_string();
        self.generation = resp.generation_id;
        let protocol = resp
            .protocol_name
            .as_ref()
            .and_then(|p| Assignor::from_name(p));
        self.protocol = protocol;
        let mut assignments = Vec::new();
        if resp.leader.as_str() == self.member_id && !resp.skip_assignment {
            let members: Vec<(String, Vec<String>, Vec<TopicPartition>)> = resp
                .members
                .iter()
                .filter_map(|m| {
                    decode_subscription(m.metadata.clone())
                        .map(|(t, o)| (m.member_id.to_string(), t, o))
                })
                .collect();
            let mut counts = HashMap::new();
            for (_, ts, _) in &members {
                for t in ts {
                    if let Ok(info) = cluster.topic(t).await {
                        counts.insert(t.clone(), info.partitions.len());
                    }
                }
            }
            let plan = assign(protocol.unwrap_or(Assignor::Range), &members, &counts);
            assignments = plan
                .into_iter()
                .map(|(m, parts)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(sb(&m))
                        .with_assignment(encode_assignment(&parts))
                })
                .collect();
        }
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(sb(&self.settings.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(sb(&self.member_id))
            .with_group_instance_id(self.settings.instance_id.as_deref().map(sb))
            .with_protocol_type(Some(sb("consumer")))
            .with_protocol_name(resp.protocol_name.clone())
            .with_assignments(assignments);
        let sresp = conn.call(&sync).await?;
        if sresp.error_code != 0 {
            return Err(ClientError::kafka(
                format!("SyncGroup({})", self.settings.group_id),
                sresp.error_code,
            ));
        }
        *self.beat_identity.lock().unwrap_or_else(|p| p.into_inner()) =
            (self.generation, self.member_id.clone());
        self.start_heartbeat(conn);
        Ok(decode_assignment(sresp.assignment))
    }

    fn start_heartbeat(&mut self, conn: Arc<Connection>) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let rejoin = Arc::clone(&self.rejoin);
        let identity = Arc::clone(&self.beat_identity);
        let group = self.settings.group_id.clone();
        let instance = self.settings.instance_id.clone();
        let every = self.settings.heartbeat_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let (generation, member) =
                    identity.lock().unwrap_or_else(|p| p.into_inner()).clone();
                let req = HeartbeatRequest::default()
                    .with_group_id(GroupId(sb(&group)))
                    .with_generation_id(generation)
                    .with_member_id(sb(&member))
                    .with_group_instance_id(instance.as_deref().map(sb));
                match conn.call(&req).await {
                    Ok(r) if r.error_code == 0 => {}
                    Ok(r) => {
                        tracing::debug!(group = %group, code = r.error_code, "heartbeat asks to rejoin");
                        rejoin.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(group = %group, error = %e, "heartbeat failed");
                        rejoin.store(true, Ordering::SeqCst);
                        return;
                    }
                }
            }
        }));
    }

    /// Leaves the group (LeaveGroup), so its partitions move at once instead of after the session timeout.
    pub async fn leave(&mut self, cluster: &Cluster) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if self.member_id.is_empty() || self.settings.instance_id.is_some() {
            return; // static members keep their place until their session times out (KIP-345)
        }
        if let Ok(conn) = self.coordinator(cluster).await {
            // v0-2 name the member at the top level, v3+ in a list; each field only in its versions.
            let mut req =
                LeaveGroupRequest::default().with_group_id(GroupId(sb(&self.settings.group_id)));
            match conn.version(kafka_protocol::messages::ApiKey::LeaveGroup) {
                Ok(v) if v < 3 => req.member_id = sb(&self.member_id),
                _ => {
                    req.members =
                        vec![MemberIdentity::default().with_member_id(sb(&self.member_id))]
                }
            }
            match conn.call(&req).await {
                Ok(r) => {
                    let code = r
                        .members
                        .iter()
                        .map(|m| m.error_code)
                        .find(|c| *c != 0)
                        .unwrap_or(r.error_code);
                    if code != 0 {
                        tracing::warn!(group = %self.settings.group_id, code, "LeaveGroup refused");
                    }
                }
                Err(e) => {
                    tracing::warn!(group = %self.settings.group_id, error = %e, "LeaveGroup failed")
                }
            }
        }
        self.member_id.clear();
        self.generation = -1;
    }

    pub fn coordinator_conn(&self) -> Option<Arc<Connection>> {
        self.coordinator.clone()
    }
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(n: usize, topics: &[&str]) -> Vec<(String, Vec<String>, Vec<TopicPartition>)> {
        (0..n)
            .map(|i| {
                (
                    format!("m{i}"),
                    topics.iter().map(|t| t.to_string()).collect(),
                    Vec::new(),
                )
            })
            .collect()
    }

    fn covers_once(plan: &BTreeMap<String, Vec<TopicPartition>>, total: usize) {
        let mut all: Vec<&TopicPartition> = plan.values().flatten().collect();
        all.sort();
        let n = all.len();
        all.dedup();
        assert_eq!((n, all.len()), (total, total), "{plan:?}");
    }

    #[test]
    fn every_assignor_covers_every_partition_once() {
        let counts: HashMap<String, usize> = [("a".to_string(), 6), ("b".to_string(), 5)]
            .into_iter()
            .collect();
        for a in [
            Assignor::Range,
            Assignor::RoundRobin,
            Assignor::CooperativeSticky,
        ] {
            for n in 1..5 {
                covers_once(&assign(a, &members(n, &["a", "b"]), &counts), 11);
            }
        }
    }

    #[test]
    fn range_matches_kafkas_split() {
        let counts: HashMap<String, usize> = [("t".to_string(), 7)].into_iter().collect();
        let plan = assign(Assignor::Range, &members(3, &["t"]), &counts);
        assert_eq!(plan["m0"].len(), 3);
        assert_eq!(plan["m1"].len(), 2);
        assert_eq!(plan["m0"][0], ("t".to_string(), 0));
    }

    #[test]
    fn cooperative_sticky_keeps_owned_partitions_and_holds_back_moves() {
        let counts: HashMap<String, usize> = [("t".to_string(), 4)].into_iter().collect();
        let owned: Vec<TopicPartition> = (0..4).map(|p| ("t".to_string(), p)).collect();
        let ms = vec![
            ("m0".to_string(), vec!["t".to_string()], owned),
            ("m1".to_string(), vec!["t".to_string()], Vec::new()),
        ];
        let plan = assign(Assignor::CooperativeSticky, &ms, &counts);
        // m0 keeps two of its four; the other two are revoked first and not yet given to m1.
        assert_eq!(plan["m0"].len(), 2);
        assert!(plan["m1"].is_empty());
    }

    #[test]
    fn subscriptions_and_assignments_round_trip() {
        let owned = vec![("t".to_string(), 3)];
        let (topics, o) =
            decode_subscription(encode_subscription(&["t".into(), "u".into()], &owned))
                .expect("decodes");
        assert_eq!(
            (topics, o),
            (vec!["t".to_string(), "u".to_string()], owned.clone())
        );
        assert_eq!(decode_assignment(encode_assignment(&owned)), owned);
    }
}
