//! One partition as the protocol handlers see it, whichever storage holds it: the local segmented log
//! (standalone) or the shared log on object storage and PostgreSQL (cluster mode). The handlers and the
//! transaction coordinator call only these methods, so there is one copy of the protocol logic; the two
//! stores differ below this line. An enum rather than a trait object: there are exactly two stores, and the
//! local one keeps its synchronous, lock-held fast path without boxing a future per call.

use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use runnel_storage::log::{AbortedTxn, AppendInfo, TimestampOffset};
use runnel_storage::{LogConfig, PartitionLog, StorageError};

use crate::cluster::SharedPartition;

// A partition is one Arc allocation of whichever size; boxing the local log would add a pointer chase
// to every local append for nothing.
#[allow(clippy::large_enum_variant)]
pub enum PartitionStore {
    Local(Mutex<PartitionLog>),
    Shared(SharedPartition),
}

pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub(crate) store: PartitionStore,
}

/// A partition's bounds: where it starts, its high watermark and its last stable offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
}

/// What a fetch read from one partition.
pub struct Fetched {
    pub bounds: Bounds,
    /// For read_committed reads: aborted transactions overlapping what was read.
    pub aborted: Vec<AbortedTxn>,
    /// Whole batches; the first is returned even when larger than the limit (KIP-74).
    pub records: Bytes,
}

/// An append begun by [`Partition::start_append`]; [`StartedAppend::finish`] waits for its durability.
pub enum StartedAppend {
    Done(AppendInfo),
    Queued(crate::cluster::shared_partition::QueuedAppend),
}

impl StartedAppend {
    pub async fn finish(self) -> Result<AppendInfo, StorageError> {
        match self {
            StartedAppend::Done(info) => Ok(info),
            StartedAppend::Queued(q) => q.finish().await,
        }
    }
}

/// A producer as DescribeProducers shows it.
pub struct ProducerView {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub txn_start_offset: i64,
}

impl Partition {
    pub fn local(topic: String, index: i32, log: PartitionLog) -> Self {
        Partition {
            topic,
            index,
            store: PartitionStore::Local(Mutex::new(log)),
        }
    }

    pub fn shared(topic: String, index: i32, shared: SharedPartition) -> Self {
        Partition {
            topic,
            index,
            store: PartitionStore::Shared(shared),
        }
    }

    /// The shared log behind the partition, in a cluster.
    pub fn shared_log(&self) -> Option<&SharedPartition> {
        match &self.store {
            PartitionStore::Local(_) => None,
            PartitionStore::Shared(s) => Some(s),
        }
    }

    /// The local log, for the maintenance only a local log has (flush, segment retention, checkpoints). A
    /// poisoned lock (a panic while appending) still yields the log: the log's own `poisoned` flag is what
    /// guards durability.
    pub fn local_log(&self) -> Option<MutexGuard<'_, PartitionLog>> {
        match &self.store {
            PartitionStore::Local(log) => Some(lock(log)),
            PartitionStore::Shared(_) => None,
        }
    }

    pub fn config(&self) -> LogConfig {
        match &self.store {
            PartitionStore::Local(log) => lock(log).config().clone(),
            PartitionStore::Shared(s) => s.config(),
        }
    }

    pub fn set_config(&self, config: LogConfig) {
        match &self.store {
            PartitionStore::Local(log) => lock(log).set_config(config),
            PartitionStore::Shared(s) => s.set_config(config),
        }
    }

    /// Appends one produce request's batches (offsets assigned in place for the local log). Answers once
    /// the configured durability holds: fsynced as configured locally, committed in the cluster.
    pub async fn append(&self, records: Vec<u8>, now_ms: i64) -> Result<AppendInfo, StorageError> {
        self.start_append(records, now_ms).await?.finish().await
    }

    /// The first half of [`Partition::append`]: the local log appends at once; the shared log queues the
    /// batches for this broker's next commit round. Requests that start all their appends before finishing
    /// any share one round, however many partitions they write, and keep their order within each partition.
    pub async fn start_append(
        &self,
        records: Vec<u8>,
        now_ms: i64,
    ) -> Result<StartedAppend, StorageError> {
        match &self.store {
            PartitionStore::Local(log) => {
                let mut records = records;
                // Appends that fsync leave the runtime's thread free for other connections meanwhile.
                let info = if lock(log).config().flush_messages < i64::MAX {
                    tokio::task::block_in_place(|| lock(log).append(&mut records, now_ms))
                } else {
                    lock(log).append(&mut records, now_ms)
                }?;
                Ok(StartedAppend::Done(info))
            }
            PartitionStore::Shared(s) => {
                Ok(StartedAppend::Queued(s.submit(records, now_ms).await?))
            }
        }
    }

    /// The log start offset as last known, without a round trip (produce answers carry it as a hint).
    pub fn log_start_offset_hint(&self) -> i64 {
        match &self.store {
            PartitionStore::Local(log) => lock(log).log_start_offset(),
            PartitionStore::Shared(s) => s.log_start_offset_hint(),
        }
    }

    pub async fn bounds(&self) -> Result<Bounds, StorageError> {
        match &self.store {
            PartitionStore::Local(log) => {
                let log = lock(log);
                Ok(Bounds {
                    log_start_offset: log.log_start_offset(),
                    high_watermark: log.high_watermark(),
                    last_stable_offset: log.last_stable_offset(),
                })
            }
            PartitionStore::Shared(s) => s.bounds().await,
        }
    }

    /// Reads whole batches from `offset`, at most `max_bytes` of them unless the first alone is larger
    /// (KIP-74); `None` reads nothing but the bounds.
    pub async fn read(
        &self,
        offset: i64,
        read_committed: bool,
        max_bytes: Option<usize>,
    ) -> Result<Fetched, StorageError> {
        match &self.store {
            PartitionStore::Local(log) => {
                let plan = lock(log).read(offset, read_committed)?;
                let records = match plan.slice {
                    Some(slice) => match max_bytes {
                        Some(max) => tokio::task::block_in_place(|| slice.read(max))?,
                        None => Bytes::new(),
                    },
                    None => Bytes::new(),
                };
                Ok(Fetched {
                    bounds: Bounds {
                        log_start_offset: plan.log_start_offset,
                        high_watermark: plan.high_watermark,
                        last_stable_offset: plan.last_stable_offset,
                    },
                    aborted: plan.aborted,
                    records,
                })
            }
            PartitionStore::Shared(s) => s.read(offset, read_committed, max_bytes).await,
        }
    }

    /// The first record at or after `timestamp` (ListOffsets by timestamp).
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        match &self.store {
            PartitionStore::Local(log) => lock(log).offset_for_timestamp(timestamp),
            PartitionStore::Shared(s) => s.offset_for_timestamp(timestamp).await,
        }
    }

    /// The record with the largest timestamp (ListOffsets MAX_TIMESTAMP).
    pub async fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, StorageError> {
        match &self.store {
            PartitionStore::Local(log) => lock(log).max_timestamp_offset(),
            PartitionStore::Shared(s) => s.max_timestamp_offset().await,
        }
    }

    /// DeleteRecords: moves the log start to `offset` (-1: the high watermark); answers the new start.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        match &self.store {
            PartitionStore::Local(log) => tokio::task::block_in_place(|| {
                let mut log = lock(log);
                let target = if offset == -1 {
                    log.high_watermark()
                } else {
                    offset
                };
                log.delete_records_before(target)
            }),
            PartitionStore::Shared(s) => s.delete_records_before(offset).await,
        }
    }

    pub async fn producers(&self) -> Result<Vec<ProducerView>, StorageError> {
        match &self.store {
            PartitionStore::Local(log) => Ok(lock(log)
                .producers()
                .producers()
                .map(|(pid, e)| ProducerView {
                    producer_id: *pid,
                    epoch: e.epoch,
                    last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                    last_timestamp: e.last_timestamp,
                    txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
                })
                .collect()),
            PartitionStore::Shared(s) => s.producers().await,
        }
    }
}

fn lock(log: &Mutex<PartitionLog>) -> MutexGuard<'_, PartitionLog> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}
