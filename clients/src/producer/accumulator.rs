//! Per-partition batching (the Java client's RecordAccumulator): records wait in one open batch per
//! partition until it reaches `batch.size` or has lingered `linger.ms`; a full batch queues behind its
//! partition's in-flight one, and `send` waits while the unsent bytes exceed the buffer (`buffer.memory`).
//! It is separate from the sender because it is the only part the callers' `send` touches directly: it
//! decides *when* a batch is due, while the sender decides how it is encoded, sent and retried.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Inner, ProducerRecord, RecordMetadata, State};
use crate::error::{ClientError, Result};
use crate::partitioner::partition_for_key;
use crate::TopicPartition;

pub(super) struct PendingRecord {
    pub(super) record: ProducerRecord,
    pub(super) timestamp: i64,
    pub(super) tx: oneshot::Sender<Result<RecordMetadata>>,
}

pub(super) struct Accumulating {
    pub(super) records: Vec<PendingRecord>,
    pub(super) bytes: usize,
    since: Instant,
}

/// How many record bytes may wait unsent before `send` waits for room (the Java client's buffer.memory).
const BUFFER_MEMORY: usize = 32 * 1024 * 1024;

fn approx_size(r: &ProducerRecord) -> usize {
    24 + r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 4)
            .sum::<usize>()
}

fn record_key_is_none(records: &[PendingRecord]) -> bool {
    records
        .last()
        .is_some_and(|r| r.record.key.is_none() && r.record.partition.is_none())
}

impl Inner {
    /// Back-pressure for `send`: waits while the buffer is full, as the Java client blocks in send.
    pub(super) async fn wait_for_room(&self) {
        loop {
            let room = self.space.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.lock().queued_bytes < BUFFER_MEMORY {
                break;
            }
            self.wake.notify_one();
            room.await;
        }
    }

    /// Adds a record to its partition's batch (choosing the partition when the record names none); true
    /// when that batch is now full, so the sender should be woken.
    pub(super) fn append(
        &self,
        record: ProducerRecord,
        partitions: usize,
        tx: oneshot::Sender<Result<RecordMetadata>>,
    ) -> Result<bool> {
        let mut s = self.lock();
        if s.fenced {
            return Err(ClientError::Fenced);
        }
        if self.config.transactional_id.is_some() && !s.txn.open {
            return Err(ClientError::Invalid(
                "send outside a transaction: call begin_transaction first".into(),
            ));
        }
        let partition = match (record.partition, &record.key) {
            (Some(p), _) => {
                if p < 0 || p as usize >= partitions {
                    return Err(ClientError::Invalid(format!(
                        "partition {p} of {} does not exist ({partitions} partitions)",
                        record.topic
                    )));
                }
                p
            }
            (None, Some(k)) => partition_for_key(k, partitions),
            (None, None) => {
                let pick = (s.rng.next_u64() % partitions.max(1) as u64) as i32;
                *s.sticky.entry(record.topic.clone()).or_insert(pick)
            }
        };
        let size = approx_size(&record);
        let timestamp = record.timestamp.unwrap_or_else(runnel_storage::now_ms);
        let tp = (record.topic.clone(), partition);
        // A batch never grows past batch.size: a full one waits in line and a new one starts.
        if s.batches
            .get(&tp)
            .is_some_and(|b| !b.records.is_empty() && b.bytes + size > self.config.batch_size)
        {
            if let Some(b) = s.batches.remove(&tp) {
                s.full.push_back((tp.clone(), b));
            }
        }
        s.queued_bytes += size;
        let batch = s.batches.entry(tp.clone()).or_insert_with(|| Accumulating {
            records: Vec::new(),
            bytes: 0,
            since: Instant::now(),
        });
        batch.records.push(PendingRecord {
            record,
            timestamp,
            tx,
        });
        batch.bytes += size;
        let full = batch.bytes >= self.config.batch_size;
        if full && record_key_is_none(&batch.records) {
            // Sticky partitioning moves on once a batch for a keyless record is full.
            s.sticky.remove(&tp.0);
        }
        Ok(full)
    }

    pub(super) fn next_due(&self) -> Duration {
        let s = self.lock();
        if s.flush_requested || !s.retry.is_empty() || !s.full.is_empty() {
            return Duration::ZERO;
        }
        s.batches
            .values()
            .map(|b| (b.since + self.config.linger).saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_millis(100))
    }

    /// Removes the batches due now, at most one per partition and none for a partition in `taken` (a retry
    /// already goes out for it): full batches first, oldest first, then the filling batches that reached
    /// batch.size or linger.ms (all of them when `flush`).
    pub(super) fn take_ready(
        &self,
        s: &mut State,
        mut taken: HashSet<TopicPartition>,
        flush: bool,
        now: Instant,
    ) -> Vec<(TopicPartition, Accumulating)> {
        // Full batches first, oldest first, one per partition; a partition's filling batch waits behind them.
        let mut picked: Vec<(TopicPartition, Accumulating)> = Vec::new();
        let mut waiting = std::collections::VecDeque::new();
        while let Some((tp, b)) = s.full.pop_front() {
            if taken.insert(tp.clone()) {
                picked.push((tp, b));
            } else {
                waiting.push_back((tp, b));
            }
        }
        s.full = waiting;
        let behind: HashSet<TopicPartition> = s.full.iter().map(|(tp, _)| tp.clone()).collect();
        let ready: Vec<TopicPartition> = s
            .batches
            .iter()
            .filter(|(tp, b)| {
                !taken.contains(*tp)
                    && !behind.contains(*tp)
                    && (flush
                        || b.bytes >= self.config.batch_size
                        || now >= b.since + self.config.linger)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in ready {
            if let Some(b) = s.batches.remove(&tp) {
                picked.push((tp, b));
            }
        }
        picked
    }
}
