//! The write path: validating and appending produce requests and broker-written control batches (offsets,
//! batch limits, producer sequences), rolling segments, applying the flush policy, and persisting what the
//! log keeps about itself (partition metadata and producer snapshots) at checkpoints and clean shutdown.

use super::{
    control_type, settings, AppendInfo, ControlType, PartitionLog, PartitionMeta, META_FILE,
    PRODUCER_SNAPSHOT_FILE,
};
use crate::batch::{self, BatchHeader};
use crate::config::LogConfig;
use crate::error::{Result, StorageError};
use crate::producer_state::{self, BatchMeta, SequenceCheck, Snapshot};
use crate::records;
use crate::segment::Segment;

/// The checks every produce request passes before any offset is given, on one node or in a cluster: well
/// formed batches with good CRCs, each within `max.message.bytes`, records that decode, and keys on every
/// record of a compacted topic. Returns where each batch starts and its header.
pub fn validate_produce(records: &[u8], config: &LogConfig) -> Result<Vec<(usize, BatchHeader)>> {
    let batches = batch::split_validated(records)?;
    for (pos, h) in &batches {
        if h.total_len() > config.max_message_bytes {
            return Err(StorageError::BatchTooLarge {
                size: h.total_len(),
                limit: config.max_message_bytes,
            });
        }
        let bytes = records
            .get(*pos..*pos + h.total_len())
            .ok_or_else(|| StorageError::InvalidRecord("batch past the end".into()))?;
        let check = records::check_records(bytes, h, records::MAX_DECOMPRESSED_BYTES)?;
        if config.compact && !h.is_control() && !check.keyless.is_empty() {
            return Err(StorageError::MissingKey {
                records: check.keyless,
            });
        }
    }
    Ok(batches)
}

impl PartitionLog {
    /// Appends the batches of one produce request to the log. `records` is modified in place (offsets).
    /// A failed write leaves the log as it was (the error is for this request alone); only a failed fsync,
    /// or a write that cannot be undone, poisons the log.
    pub fn append(&mut self, records: &mut [u8], now_ms: i64) -> Result<AppendInfo> {
        if self.poisoned {
            return Err(StorageError::Poisoned);
        }
        if self.shut {
            return Err(StorageError::Closed);
        }
        let batches = validate_produce(records, &self.config)?;
        // Idempotence: a request carries one batch per partition from idempotent producers.
        if let [(_, h)] = batches.as_slice() {
            match self.producers.check(h) {
                SequenceCheck::Accept => {}
                SequenceCheck::Duplicate(meta) => return Ok(duplicate(meta, h)),
                SequenceCheck::StaleEpoch => {
                    return Err(StorageError::StaleProducerEpoch {
                        got: h.producer_epoch,
                    })
                }
                SequenceCheck::OutOfOrder { expected, got } => {
                    return Err(StorageError::OutOfOrderSequence { expected, got })
                }
            }
        } else {
            for (_, h) in &batches {
                if let SequenceCheck::StaleEpoch = self.producers.check(h) {
                    return Err(StorageError::StaleProducerEpoch {
                        got: h.producer_epoch,
                    });
                }
            }
        }

        let total: usize = batches.iter().map(|(_, h)| h.total_len()).sum();
        self.maybe_roll(total as u64, now_ms)?;
        let first_offset = self.next_offset;
        let mut next = self.next_offset;
        let mut count = 0i64;
        let mut log_append_time = -1;
        let mut headers = Vec::with_capacity(batches.len());
        let mut controls = Vec::with_capacity(batches.len());
        for (pos, h) in &batches {
            let buf = records
                .get_mut(*pos..*pos + h.total_len())
                .ok_or_else(|| StorageError::InvalidRecord("batch past the end".into()))?;
            batch::set_base_offset(buf, next);
            batch::set_partition_leader_epoch(buf, 0);
            if self.config.log_append_time {
                batch::set_log_append_time(buf, now_ms);
                log_append_time = now_ms;
            }
            let header = BatchHeader::parse(buf)?;
            controls.push(if header.is_control() {
                control_type(&bytes::Bytes::copy_from_slice(buf), &header)
            } else {
                ControlType::Other
            });
            next = header.next_offset();
            count += i64::from(header.record_count);
            headers.push(header);
        }
        // One write for the whole request: the batches are contiguous in `records`.
        let end = batches.last().map_or(0, |(p, h)| p + h.total_len());
        if let Err(e) = self.active.append(&records[..end], &headers, now_ms) {
            if matches!(e, StorageError::Poisoned) {
                self.poisoned = true;
            }
            return Err(e);
        }
        self.next_offset = next;
        for (h, ctl) in headers.iter().zip(controls) {
            self.observe_batch(h, ctl)?;
        }
        self.unflushed_messages += count;
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(AppendInfo {
            base_offset: first_offset,
            last_offset: self.next_offset - 1,
            log_append_time,
            duplicate: false,
            records: count,
        })
    }

    /// Appends a control batch (transaction marker) written by the broker itself.
    pub fn append_control(&mut self, batch_bytes: &mut [u8], now_ms: i64) -> Result<AppendInfo> {
        self.append(batch_bytes, now_ms)
    }

    fn maybe_roll(&mut self, incoming: u64, now_ms: i64) -> Result<()> {
        let segment_bytes = self.config.segment_bytes;
        let segment_ms = self.config.segment_ms;
        let active = &self.active;
        if active.is_empty() {
            return Ok(());
        }
        let too_big = active.size() + incoming > segment_bytes;
        let too_old = active
            .first_append_ms()
            .is_some_and(|t| now_ms - t >= segment_ms);
        let offsets_overflow = self.next_offset - active.base_offset() > i64::from(i32::MAX);
        if too_big || too_old || active.indexes_full() || offsets_overflow {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end. Fails without changing anything
    /// when the disk refuses the new segment or the old one's indexes.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let next = self.next_offset;
        if self.active.is_empty() && self.active.base_offset() == next {
            return Ok(());
        }
        self.flush()?;
        let settings = settings(&self.config);
        let mut seg = Segment::create(&self.dir, next, settings)?;
        if let Err(e) = self.active.seal() {
            seg.delete()?;
            return Err(e);
        }
        seg.set_first_append_ms(now_ms);
        let old = std::mem::replace(&mut self.active, seg);
        self.closed.insert(old.base_offset(), old);
        self.write_producer_snapshot()?;
        self.write_meta()
    }

    /// Makes every appended batch durable. A failure poisons the log: after a failed fsync the kernel may
    /// have dropped the dirty pages, so nothing written since can be trusted to be on disk.
    pub fn flush(&mut self) -> Result<()> {
        let from = self.recovery_point;
        let result = self
            .closed
            .values_mut()
            .chain(std::iter::once(&mut self.active))
            .filter(|seg| seg.next_offset() > from)
            .try_for_each(Segment::flush);
        if let Err(e) = result {
            self.poisoned = true;
            return Err(e);
        }
        self.recovery_point = self.next_offset;
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Flushes when `flush.ms` has passed since the last flush; called by the broker's ticker.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<()> {
        if self.unflushed_messages > 0 && now_ms - self.last_flush_ms >= self.config.flush_ms {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// Persists the log start offset, recovery point and producer state, unless none changed since the
    /// last checkpoint.
    pub fn checkpoint(&mut self) -> Result<()> {
        let state = (self.next_offset, self.log_start_offset, self.recovery_point);
        if self.checkpointed == Some(state) {
            return Ok(());
        }
        self.write_producer_snapshot()?;
        self.write_meta()?;
        self.checkpointed = Some(state);
        Ok(())
    }

    pub(super) fn write_meta(&self) -> Result<()> {
        let meta = PartitionMeta {
            log_start_offset: self.log_start_offset,
            recovery_point: self.recovery_point,
        };
        let bytes =
            serde_json::to_vec(&meta).map_err(|e| StorageError::CorruptCatalog(e.to_string()))?;
        crate::atomic_file::write(&self.dir.join(META_FILE), &bytes)
    }

    fn write_producer_snapshot(&self) -> Result<()> {
        producer_state::write_snapshot(
            &self.dir.join(PRODUCER_SNAPSHOT_FILE),
            &Snapshot {
                offset: self.next_offset,
                state: self.producers.clone(),
            },
        )
    }

    /// Clean shutdown: refuse later appends, flush, seal the active segment's indexes, record the recovery
    /// point (which a clean open then checks the log's end against).
    pub fn close(&mut self) -> Result<()> {
        self.shut = true;
        self.flush()?;
        self.active.seal()?;
        self.checkpoint()
    }
}

fn duplicate(meta: BatchMeta, h: &BatchHeader) -> AppendInfo {
    AppendInfo {
        base_offset: meta.first_offset,
        last_offset: meta.last_offset,
        log_append_time: -1,
        duplicate: true,
        records: i64::from(h.record_count),
    }
}
