//! Committed offsets: OffsetCommit and OffsetFetch, the transactional offsets of TxnOffsetCommit that wait
//! for their transaction to end, and the retention-based expiry of offsets of empty groups.

use std::time::Instant;

use kafka_protocol::error::ResponseError;
use runnel_storage::StorageError;

use super::{
    code, instance_mismatch, CommitParams, FetchedOffsets, GroupCoordinator, Inner, PartitionCodes,
    StoredOffsets,
};
use crate::groups::group::{CommittedOffset, Group, GroupState};
use crate::groups::store::Change;

impl GroupCoordinator {
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
        self.lock().settle_txn(group_id, producer_id, commit)
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
}

impl Inner {
    pub(super) fn settle_txn(
        &mut self,
        group_id: &str,
        producer_id: i64,
        commit: bool,
    ) -> Result<(), StorageError> {
        let Some(pending) = self
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
        self.store.write(&changes)?;
        if let Some(g) = self.groups.get_mut(group_id) {
            g.pending_txn.remove(&producer_id);
            if commit {
                g.offsets.extend(pending);
            }
        }
        Ok(())
    }
}
