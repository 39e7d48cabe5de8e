//! One partition of the shared log: appends go through this broker's commit pipeline (uploaded, then
//! committed in the database, then answered), reads through the batch index, object storage and the read
//! cache. The partition's bounds, producers and transactions are the database's rows, so every broker sees
//! the same partition; this struct only caches its config and the last log start it saw.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::{Bytes, BytesMut};
use runnel_storage::batch::BatchHeader;
use runnel_storage::log::{control_type, AbortedTxn, AppendInfo, ControlType, TimestampOffset};
use runnel_storage::{LogConfig, StorageError};
use uuid::Uuid;

use super::batch_index::Appended;
use super::commit_pipeline::{CommitError, Pending};
use super::node::ClusterNode;
use crate::partition::{Bounds, Fetched, ProducerView};

pub struct SharedPartition {
    topic_id: Uuid,
    topic: String,
    index: i32,
    node: Arc<ClusterNode>,
    config: RwLock<LogConfig>,
    log_start: AtomicI64,
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

impl SharedPartition {
    pub fn new(
        node: Arc<ClusterNode>,
        topic_id: Uuid,
        topic: String,
        index: i32,
        config: LogConfig,
    ) -> Self {
        SharedPartition {
            topic_id,
            topic,
            index,
            node,
            config: RwLock::new(config),
            log_start: AtomicI64::new(0),
        }
    }

    pub fn topic_id(&self) -> Uuid {
        self.topic_id
    }

    pub fn config(&self) -> LogConfig {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_config(&self, config: LogConfig) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    pub fn log_start_offset_hint(&self) -> i64 {
        self.log_start.load(Ordering::Relaxed)
    }

    fn unknown(&self) -> StorageError {
        StorageError::UnknownTopicOrPartition(format!("{}-{}", self.topic, self.index))
    }

    /// Validates the request's batches as the local log does and queues them back to back (one round);
    /// [`QueuedAppend::finish`] answers once their round is committed.
    pub async fn submit(
        &self,
        records: Vec<u8>,
        now_ms: i64,
    ) -> Result<QueuedAppend, StorageError> {
        let config = self.config();
        let batches = runnel_storage::log::validate_produce(&records, &config)?;
        let mut records = records;
        if config.log_append_time {
            for (pos, h) in &batches {
                if let Some(buf) = records.get_mut(*pos..*pos + h.total_len()) {
                    runnel_storage::batch::set_log_append_time(buf, now_ms);
                }
            }
        }
        let bytes = Bytes::from(records);
        let mut pending = Vec::with_capacity(batches.len());
        for (pos, _) in &batches {
            let batch = bytes.slice(*pos..);
            let header = BatchHeader::parse(&batch)?;
            let batch = batch.slice(..header.total_len());
            let control = if header.is_control() {
                control_type(&batch, &header)
            } else {
                ControlType::Other
            };
            let queued = self
                .node
                .pipeline
                .submit(self.topic_id, self.index, batch, header, control)
                .await
                .map_err(unavailable)?;
            pending.push((header, queued));
        }
        Ok(QueuedAppend {
            partition: format!("{}-{}", self.topic, self.index),
            pending,
            log_append_time: if config.log_append_time { now_ms } else { -1 },
        })
    }

    pub async fn bounds(&self) -> Result<Bounds, StorageError> {
        let db = self.node.db.client().await.map_err(unavailable)?;
        let row = db
            .query_opt(
                "SELECT p.log_start, p.next_offset,
                        (SELECT min(o.first_offset) FROM runnel_txn_open o
                         WHERE o.topic_id = p.topic_id AND o.partition = p.partition)
                 FROM runnel_partitions p WHERE p.topic_id = $1 AND p.partition = $2",
                &[&self.topic_id, &self.index],
            )
            .await
            .map_err(unavailable)?
            .ok_or_else(|| self.unknown())?;
        let log_start: i64 = row.get(0);
        let high_watermark: i64 = row.get(1);
        let first_open: Option<i64> = row.get(2);
        self.log_start.store(log_start, Ordering::Relaxed);
        Ok(Bounds {
            log_start_offset: log_start,
            high_watermark,
            last_stable_offset: first_open.unwrap_or(high_watermark).min(high_watermark),
        })
    }

    pub async fn read(
        &self,
        offset: i64,
        read_committed: bool,
        max_bytes: Option<usize>,
    ) -> Result<Fetched, StorageError> {
        let bounds = self.bounds().await?;
        if offset < bounds.log_start_offset || offset > bounds.high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: bounds.log_start_offset,
                end: bounds.high_watermark,
            });
        }
        let limit = if read_committed {
            bounds.last_stable_offset
        } else {
            bounds.high_watermark
        };
        let db = self.node.db.client().await.map_err(unavailable)?;
        let aborted = if read_committed && offset < limit {
            db.query(
                "SELECT producer_id, first_offset, last_offset FROM runnel_txn_aborted
                 WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3 AND first_offset < $4
                 ORDER BY first_offset",
                &[&self.topic_id, &self.index, &offset, &limit],
            )
            .await
            .map_err(unavailable)?
            .iter()
            .map(|r| AbortedTxn {
                producer_id: r.get(0),
                first_offset: r.get(1),
                last_offset: r.get(2),
            })
            .collect()
        } else {
            Vec::new()
        };
        let records = match max_bytes {
            Some(max) if offset < limit => {
                let batches = self
                    .node
                    .reader
                    .read(&*db, self.topic_id, self.index, offset, max as u64)
                    .await
                    .map_err(unavailable)?;
                let mut out = BytesMut::new();
                for b in batches {
                    let below_limit = BatchHeader::parse(&b).is_ok_and(|h| h.base_offset < limit);
                    if !below_limit || (!out.is_empty() && out.len() + b.len() > max) {
                        break;
                    }
                    out.extend_from_slice(&b);
                }
                out.freeze()
            }
            _ => Bytes::new(),
        };
        Ok(Fetched {
            bounds,
            aborted,
            records,
        })
    }

    /// The first record at or after `timestamp` at or after the log start.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        self.first_record_where(timestamp, |ts| ts >= timestamp)
            .await
    }

    /// The record with the largest timestamp, the earliest on ties.
    pub async fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>, StorageError> {
        let db = self.node.db.client().await.map_err(unavailable)?;
        let row = db
            .query_one(
                "SELECT max(b.max_timestamp) FROM runnel_batches b JOIN runnel_partitions p
                     ON p.topic_id = b.topic_id AND p.partition = b.partition
                 WHERE b.topic_id = $1 AND b.partition = $2 AND NOT b.is_control
                     AND b.last_offset >= p.log_start",
                &[&self.topic_id, &self.index],
            )
            .await
            .map_err(unavailable)?;
        match row.get::<_, Option<i64>>(0) {
            Some(max) => self.first_record_where(max, |ts| ts == max).await,
            None => Ok(None),
        }
    }

    /// Scans the batches whose max timestamp reaches `at_least`, oldest first, for the first record whose
    /// timestamp satisfies `wanted`.
    async fn first_record_where(
        &self,
        at_least: i64,
        wanted: impl Fn(i64) -> bool,
    ) -> Result<Option<TimestampOffset>, StorageError> {
        let db = self.node.db.client().await.map_err(unavailable)?;
        let log_start = self.bounds().await?.log_start_offset;
        let candidates = db
            .query(
                "SELECT base_offset FROM runnel_batches
                 WHERE topic_id = $1 AND partition = $2 AND NOT is_control
                     AND max_timestamp >= $3 AND last_offset >= $4
                 ORDER BY base_offset LIMIT 100",
                &[&self.topic_id, &self.index, &at_least, &log_start],
            )
            .await
            .map_err(unavailable)?;
        for row in candidates {
            let base: i64 = row.get(0);
            let batches = self
                .node
                .reader
                .read(&*db, self.topic_id, self.index, base, 1)
                .await
                .map_err(unavailable)?;
            // A row of a segment holds a run of batches (markers among them): each is looked at.
            for batch in batches {
                let header = BatchHeader::parse(&batch)?;
                if header.is_control() || header.max_timestamp < at_least {
                    continue;
                }
                let found = runnel_storage::records::read_records(&batch, &header)?
                    .into_iter()
                    .find(|r| wanted(r.timestamp) && r.offset >= log_start);
                if let Some(r) = found {
                    return Ok(Some(TimestampOffset {
                        offset: r.offset,
                        timestamp: r.timestamp,
                    }));
                }
            }
        }
        Ok(None)
    }

    /// Moves the log start (never back, never past the high watermark; -1 is the high watermark) and
    /// drops the index rows wholly below it.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, StorageError> {
        let mut db = super::connect(self.node.db.url())
            .await
            .map_err(unavailable)?;
        let tx = db.transaction().await.map_err(unavailable)?;
        let row = tx
            .query_opt(
                "SELECT log_start, next_offset FROM runnel_partitions
                 WHERE topic_id = $1 AND partition = $2 FOR UPDATE",
                &[&self.topic_id, &self.index],
            )
            .await
            .map_err(unavailable)?
            .ok_or_else(|| self.unknown())?;
        let (start, end): (i64, i64) = (row.get(0), row.get(1));
        let target = if offset == -1 { end } else { offset };
        if target < 0 || target > end {
            return Err(StorageError::OffsetOutOfRange {
                offset: target,
                start,
                end,
            });
        }
        let new_start = target.max(start);
        tx.execute(
            "UPDATE runnel_partitions SET log_start = $3 WHERE topic_id = $1 AND partition = $2",
            &[&self.topic_id, &self.index, &new_start],
        )
        .await
        .map_err(unavailable)?;
        tx.execute(
            "DELETE FROM runnel_batches WHERE topic_id = $1 AND partition = $2 AND last_offset < $3",
            &[&self.topic_id, &self.index, &new_start],
        )
        .await
        .map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        self.log_start.store(new_start, Ordering::Relaxed);
        Ok(new_start)
    }

    pub async fn producers(&self) -> Result<Vec<ProducerView>, StorageError> {
        let db = self.node.db.client().await.map_err(unavailable)?;
        let rows = db
            .query(
                "SELECT DISTINCT ON (b.producer_id) b.producer_id, b.producer_epoch, b.last_sequence,
                        o.first_offset
                 FROM runnel_producer_batches b
                 LEFT JOIN runnel_txn_open o ON o.topic_id = b.topic_id AND o.partition = b.partition
                     AND o.producer_id = b.producer_id
                 WHERE b.topic_id = $1 AND b.partition = $2
                 ORDER BY b.producer_id, b.base_offset DESC",
                &[&self.topic_id, &self.index],
            )
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|r| ProducerView {
                producer_id: r.get(0),
                epoch: r.get(1),
                last_sequence: r.get(2),
                last_timestamp: -1,
                txn_start_offset: r.get::<_, Option<i64>>(3).unwrap_or(-1),
            })
            .collect())
    }
}

/// Batches of one request queued for this broker's commit round.
pub struct QueuedAppend {
    /// "topic-partition", for the error should the partition be gone when the round commits
    partition: String,
    pending: Vec<(BatchHeader, Pending)>,
    log_append_time: i64,
}

impl QueuedAppend {
    /// Waits for the round and answers as an append to the local log would.
    pub async fn finish(self) -> Result<AppendInfo, StorageError> {
        let mut info: Option<AppendInfo> = None;
        for (header, queued) in self.pending {
            let outcome = queued.outcome().await.map_err(|e| match e {
                CommitError::Closed => StorageError::Closed,
                e => unavailable(e),
            })?;
            let (base, duplicate) = match outcome {
                Appended::At(base) => (base, false),
                Appended::Duplicate(base) => (base, true),
                Appended::OutOfOrder => {
                    return Err(StorageError::OutOfOrderSequence {
                        expected: -1,
                        got: header.base_sequence,
                    })
                }
                Appended::Fenced => {
                    return Err(StorageError::StaleProducerEpoch {
                        got: header.producer_epoch,
                    })
                }
                Appended::UnknownPartition => {
                    return Err(StorageError::UnknownTopicOrPartition(self.partition))
                }
            };
            let last = base + i64::from(header.last_offset_delta);
            let records = i64::from(header.record_count);
            info = Some(match info {
                None => AppendInfo {
                    base_offset: base,
                    last_offset: last,
                    log_append_time: self.log_append_time,
                    duplicate,
                    records,
                },
                Some(i) => AppendInfo {
                    last_offset: last,
                    duplicate: i.duplicate && duplicate,
                    records: i.records + records,
                    ..i
                },
            });
        }
        info.ok_or_else(|| StorageError::InvalidRecord("no record batch in the request".into()))
    }
}
