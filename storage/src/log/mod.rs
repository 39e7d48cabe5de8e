//! A partition's log: an ordered set of segments with one active segment at the end.
//!
//! The log assigns offsets, enforces batch limits and producer sequences, rolls segments, applies the flush
//! policy, answers offset and timestamp lookups, and deletes whole segments for retention. It is not
//! thread-safe by itself: the broker keeps each partition behind a lock and copies fetched bytes out through
//! [`ReadSlice`]s after releasing it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::batch::{self, BatchHeader};
use crate::config::LogConfig;
use crate::error::{IoContext, Result, StorageError};
use crate::producer_state::{self, BatchMeta, ProducerState, SequenceCheck, Snapshot};
use crate::records;
use crate::segment::{ReadSlice, Segment, SegmentSettings};

mod compaction;
mod transactions;
pub use compaction::CompactionStats;
use transactions::TxnState;
pub use transactions::{control_type, marker_batch, AbortedTxn, ControlType};

const META_FILE: &str = "partition.json";
const PRODUCER_SNAPSHOT_FILE: &str = "producer-state.json";

/// What the log keeps about itself between runs.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct PartitionMeta {
    log_start_offset: i64,
    /// Every batch below this offset was on disk (fsynced) when it was written.
    recovery_point: i64,
}

/// The result of an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's time stamped on the batch for LogAppendTime topics, else -1.
    pub log_append_time: i64,
    /// The batch was a retry of one already in the log: nothing was written.
    pub duplicate: bool,
    pub records: i64,
}

/// A timestamp lookup's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampOffset {
    pub offset: i64,
    pub timestamp: i64,
}

/// What a fetch will read: a slice of one segment (if any data lies at the offset) and the log's bounds.
pub struct ReadPlan {
    pub slice: Option<ReadSlice>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// For read_committed reads: aborted transactions overlapping the readable range.
    pub aborted: Vec<AbortedTxn>,
}

pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Closed segments by base offset; the active one is kept apart so that there always is one.
    closed: BTreeMap<i64, Segment>,
    active: Segment,
    log_start_offset: i64,
    next_offset: i64,
    producers: ProducerState,
    unflushed_messages: i64,
    last_flush_ms: i64,
    recovery_point: i64,
    poisoned: bool,
    /// Set by [`PartitionLog::close`]: nothing may land after the clean-shutdown marker.
    shut: bool,
    /// (next offset, log start, recovery point) as of the last checkpoint written, so an idle partition's
    /// checkpoint (every minute, and at shutdown) costs no write and no fsync. None: write the next one.
    checkpointed: Option<(i64, i64, i64)>,
    /// Closed segments below this offset were compacted in this run (compaction skips them when nothing new closed).
    compacted_up_to: i64,
    txns: TxnState,
}

fn settings(config: &LogConfig) -> SegmentSettings {
    SegmentSettings {
        index_interval_bytes: config.index_interval_bytes,
        index_max_bytes: config.segment_index_bytes,
    }
}

fn segment_bases(dir: &Path) -> Result<Vec<i64>> {
    let mut bases = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(stem) = name.strip_suffix(".log") {
            if let Ok(base) = stem.parse::<i64>() {
                bases.push(base);
            }
        } else if name.ends_with(".tmp") || name.ends_with(".cleaned") {
            let _ = fs::remove_file(entry.path());
        }
    }
    bases.sort_unstable();
    Ok(bases)
}

impl PartitionLog {
    /// Opens or creates the log in `dir`. After a clean stop (`clean`) each segment is checked against what
    /// it recorded (see [`Segment::open_checked`]); after an unclean one every segment from the recovery
    /// point on is verified batch by batch. A segment that fails either is recovered: its invalid tail cut
    /// off and its indexes rebuilt, with a warning naming the file. Offsets handed out before are never
    /// handed out again, even when the data holding them is gone.
    pub fn open(dir: &Path, config: LogConfig, clean: bool, now_ms: i64) -> Result<Self> {
        fs::create_dir_all(dir).at(dir)?;
        let (meta, clean) = match fs::read(dir.join(META_FILE)) {
            Ok(bytes) => match serde_json::from_slice::<PartitionMeta>(&bytes) {
                Ok(meta) => (meta, clean),
                Err(e) => {
                    tracing::warn!(file = %dir.join(META_FILE).display(), error = %e, "unreadable partition metadata; verifying every segment");
                    (PartitionMeta::default(), false)
                }
            },
            Err(_) => (PartitionMeta::default(), clean),
        };
        let bases = segment_bases(dir)?;
        let settings = settings(&config);
        let mut segments = BTreeMap::new();
        for (i, &base) in bases.iter().enumerate() {
            let is_last = i + 1 == bases.len();
            let below_recovery_point = bases
                .get(i + 1)
                .is_some_and(|&next| next <= meta.recovery_point);
            let checked = if clean || below_recovery_point {
                match Segment::open_checked(dir, base, settings)? {
                    Ok(seg) => Some(seg),
                    Err(why) => {
                        tracing::warn!(dir = %dir.display(), base, problem = %why, "segment does not match what was recorded; recovering it");
                        None
                    }
                }
            } else {
                None
            };
            let seg = match checked {
                Some(seg) => seg,
                None => {
                    let rec = Segment::recover(dir, base, settings)?;
                    if rec.truncated_bytes > 0 {
                        tracing::warn!(segment = %rec.segment.paths().log.display(), bytes = rec.truncated_bytes, "truncated invalid tail");
                    }
                    let mut seg = rec.segment;
                    if !is_last {
                        if let Err(e) = seg.seal() {
                            tracing::warn!(dir = %dir.display(), base, error = %e, "cannot write rebuilt indexes; keeping them in memory");
                        }
                    }
                    seg
                }
            };
            segments.insert(base, seg);
        }
        let log_start_offset = meta.log_start_offset;
        let mut active = match segments.pop_last() {
            Some((_, seg)) => seg,
            None => Segment::create(dir, log_start_offset.max(meta.recovery_point), settings)?,
        };
        if active.next_offset() < meta.recovery_point {
            // Offsets up to the recovery point were handed out (and fsynced): whatever lost them, the log
            // continues after them, so a consumer never sees one offset name two records.
            tracing::warn!(dir = %dir.display(), end = active.next_offset(), recorded = meta.recovery_point, "log ends before offsets it handed out; continuing after them (records in between are lost)");
            let next = Segment::create(dir, meta.recovery_point, settings)?;
            let old = std::mem::replace(&mut active, next);
            if old.is_empty() {
                old.delete()?;
            } else {
                let mut old = old;
                old.seal()?;
                segments.insert(old.base_offset(), old);
            }
        }
        active.set_first_append_ms(now_ms);
        let next_offset = active.next_offset();
        let first_base = segments
            .keys()
            .next()
            .copied()
            .unwrap_or(active.base_offset());
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            closed: segments,
            active,
            log_start_offset: log_start_offset.max(first_base).min(next_offset),
            next_offset,
            producers: ProducerState::default(),
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            recovery_point: meta.recovery_point.min(next_offset),
            poisoned: false,
            shut: false,
            checkpointed: None,
            compacted_up_to: 0,
            txns: TxnState::open(dir, 0)?,
        };
        let snapshot_at = log.rebuild_producer_state()?;
        let state = (log.next_offset, log.log_start_offset, log.recovery_point);
        if snapshot_at == Some(log.next_offset)
            && (meta.log_start_offset, meta.recovery_point) == (state.1, state.2)
        {
            log.checkpointed = Some(state);
        }
        Ok(log)
    }

    /// Rebuilds producer and transaction state from the snapshot and the log after it; returns the
    /// snapshot's offset when one was used.
    fn rebuild_producer_state(&mut self) -> Result<Option<i64>> {
        let snapshot = producer_state::read_snapshot(&self.dir.join(PRODUCER_SNAPSHOT_FILE))?;
        let (from, used) = match snapshot {
            Some(s) if s.offset <= self.next_offset && s.offset >= self.log_start_offset => {
                self.producers = s.state;
                (s.offset, Some(s.offset))
            }
            _ => (self.log_start_offset, None),
        };
        self.txns = TxnState::open(&self.dir, from)?;
        for (pid, e) in self.producers.producers() {
            if let Some(first) = e.current_txn_first_offset {
                self.txns.ongoing.insert(first, *pid);
            }
        }
        // Headers suffice, except for control batches, whose marker type is in their one record.
        let mut replay: Vec<(BatchHeader, ControlType)> = Vec::new();
        for seg in self.segments() {
            if seg.next_offset() <= from {
                continue;
            }
            let mut found = Vec::new();
            seg.scan_headers(0, |pos, h| {
                if h.base_offset >= from {
                    found.push((pos, *h));
                }
                true
            })?;
            for (pos, h) in found {
                let ctl = if h.is_control() {
                    control_type(&seg.batch_at(pos, &h)?, &h)
                } else {
                    ControlType::Other
                };
                replay.push((h, ctl));
            }
        }
        for (h, ctl) in &replay {
            self.observe_batch(h, *ctl)?;
        }
        self.txns.rewrite(self.log_start_offset)?;
        Ok(used)
    }

    /// Updates transaction and producer state for one appended (or replayed) batch.
    fn observe_batch(&mut self, h: &BatchHeader, ctl: ControlType) -> Result<()> {
        if h.is_transactional() {
            let open = self
                .producers
                .get(h.producer_id)
                .and_then(|e| e.current_txn_first_offset);
            self.txns.observe(h, open, ctl)?;
        }
        self.producers.record(h);
        Ok(())
    }

    /// Every segment, oldest first.
    fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.closed.values().chain(std::iter::once(&self.active))
    }

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
        let batches = batch::split_validated(records)?;
        for (pos, h) in &batches {
            if h.total_len() > self.config.max_message_bytes {
                return Err(StorageError::BatchTooLarge {
                    size: h.total_len(),
                    limit: self.config.max_message_bytes,
                });
            }
            let bytes = records
                .get(*pos..*pos + h.total_len())
                .ok_or_else(|| StorageError::InvalidRecord("batch past the end".into()))?;
            let check = records::check_records(bytes, h, records::MAX_DECOMPRESSED_BYTES)?;
            if self.config.compact && !h.is_control() && !check.keyless.is_empty() {
                return Err(StorageError::MissingKey {
                    records: check.keyless,
                });
            }
        }
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

    fn write_meta(&self) -> Result<()> {
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

    /// The offset below which every transaction is decided (the high watermark when none is open).
    pub fn last_stable_offset(&self) -> i64 {
        self.txns
            .first_unstable()
            .unwrap_or(self.next_offset)
            .min(self.next_offset)
    }

    /// Where a fetch at `offset` reads from. A read_committed read stops at the last stable offset and
    /// carries the aborted transactions in its range.
    pub fn read(&self, offset: i64, read_committed: bool) -> Result<ReadPlan> {
        let lso = self.last_stable_offset();
        let limit = if read_committed {
            lso
        } else {
            self.next_offset
        };
        let bounds = |slice| ReadPlan {
            slice,
            high_watermark: self.next_offset,
            last_stable_offset: lso,
            log_start_offset: self.log_start_offset,
            aborted: if read_committed {
                self.txns.aborted_between(offset, limit)
            } else {
                Vec::new()
            },
        };
        if offset < self.log_start_offset || offset > self.next_offset {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end: self.next_offset,
            });
        }
        if offset >= limit {
            return Ok(bounds(None));
        }
        // Start in the segment whose base is at or below the offset; compaction may leave gaps, so a later
        // segment may hold the next batch.
        let from = self
            .segments()
            .filter(|s| s.base_offset() <= offset)
            .map(Segment::base_offset)
            .last();
        for seg in self
            .segments()
            .filter(|s| from.is_none_or(|f| s.base_offset() >= f))
        {
            if let Some((pos, _)) = seg.locate(offset.max(seg.base_offset()))? {
                let mut slice = seg.read_slice(pos)?;
                // Stop before the batch holding the limit when it lies in this segment.
                if limit < seg.next_offset() {
                    if let Some((end, _)) = seg.locate(limit)? {
                        slice.end = end;
                    }
                }
                if slice.end <= slice.position {
                    return Ok(bounds(None));
                }
                return Ok(bounds(Some(slice)));
            }
        }
        Ok(bounds(None))
    }

    /// Calls `f` with every batch at or after `from`, oldest first, until it returns false. For rebuilding
    /// state kept in a log (coordinators); fetches use [`PartitionLog::read`].
    pub fn scan_batches(
        &self,
        from: i64,
        mut f: impl FnMut(&BatchHeader, bytes::Bytes) -> bool,
    ) -> Result<()> {
        for seg in self.segments() {
            if seg.next_offset() <= from {
                continue;
            }
            let mut positions = Vec::new();
            seg.scan_headers(0, |pos, h| {
                if h.last_offset() >= from {
                    positions.push((pos, *h));
                }
                true
            })?;
            for (pos, h) in positions {
                if !f(&h, seg.batch_at(pos, &h)?) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// The first record at or after `timestamp` (ListOffsets by timestamp).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampOffset>> {
        for seg in self.segments() {
            if seg.next_offset() <= self.log_start_offset {
                continue;
            }
            let mut pos = match seg.first_batch_at_or_after_time(timestamp)? {
                Some((pos, _)) => pos,
                None => continue,
            };
            while let Some(h) = seg.header_at(pos)? {
                if h.max_timestamp >= timestamp && h.last_offset() >= self.log_start_offset {
                    let bytes = seg.batch_at(pos, &h)?;
                    let found = records::read_records(&bytes, &h)?
                        .into_iter()
                        .find(|r| r.timestamp >= timestamp && r.offset >= self.log_start_offset);
                    if let Some(r) = found {
                        return Ok(Some(TimestampOffset {
                            offset: r.offset,
                            timestamp: r.timestamp,
                        }));
                    }
                }
                pos += h.total_len() as u64;
            }
        }
        Ok(None)
    }

    /// The record with the largest timestamp (ListOffsets MAX_TIMESTAMP); the earliest such on ties.
    pub fn max_timestamp_offset(&self) -> Result<Option<TimestampOffset>> {
        let best = self
            .segments()
            .filter(|s| !s.is_empty() && s.next_offset() > self.log_start_offset)
            .fold(None::<&Segment>, |best, s| match best {
                Some(b) if b.max_timestamp() >= s.max_timestamp() => Some(b),
                _ => Some(s),
            });
        match best {
            Some(seg) => self.offset_for_timestamp_in(seg, seg.max_timestamp()),
            None => Ok(None),
        }
    }

    fn offset_for_timestamp_in(
        &self,
        seg: &Segment,
        timestamp: i64,
    ) -> Result<Option<TimestampOffset>> {
        let mut found = None;
        let mut err = None;
        seg.scan_headers(0, |pos, h| {
            if h.max_timestamp < timestamp || h.last_offset() < self.log_start_offset {
                return true;
            }
            match seg
                .batch_at(pos, h)
                .and_then(|b| records::read_records(&b, h))
            {
                Ok(recs) => {
                    found = recs
                        .into_iter()
                        .find(|r| r.timestamp == timestamp && r.offset >= self.log_start_offset)
                        .map(|r| TimestampOffset {
                            offset: r.offset,
                            timestamp: r.timestamp,
                        });
                }
                Err(e) => err = Some(e),
            }
            found.is_none() && err.is_none()
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Moves the log start offset forward (DeleteRecords). Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        if offset > self.next_offset || offset < 0 {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                start: self.log_start_offset,
                end: self.next_offset,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.delete_segments_below_start()?;
            self.write_meta()?;
        }
        Ok(self.log_start_offset)
    }

    fn delete_segments_below_start(&mut self) -> Result<()> {
        let doomed: Vec<i64> = self
            .closed
            .values()
            .filter(|s| s.next_offset() <= self.log_start_offset)
            .map(Segment::base_offset)
            .collect();
        self.delete_segments(&doomed)
    }

    fn delete_segments(&mut self, bases: &[i64]) -> Result<()> {
        for b in bases {
            if let Some(seg) = self.closed.remove(b) {
                tracing::info!(dir = %self.dir.display(), base = b, "deleting segment");
                seg.delete()?;
            }
        }
        let first = self
            .closed
            .keys()
            .next()
            .copied()
            .unwrap_or(self.active.base_offset());
        self.log_start_offset = self.log_start_offset.max(first);
        self.producers.remove_before(self.log_start_offset);
        self.txns.rewrite(self.log_start_offset)
    }

    /// Applies `retention.ms` and `retention.bytes` by deleting whole segments, oldest first. The active
    /// segment is rolled first when it alone has expired, so that it can go too. Returns segments deleted.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize> {
        if !self.config.delete {
            return Ok(0);
        }
        let mut doomed = Vec::new();
        if self.config.retention_ms >= 0 {
            let limit = now_ms - self.config.retention_ms;
            let expired = |s: &Segment| !s.is_empty() && s.max_timestamp() < limit;
            if self.closed.values().all(expired) && expired(&self.active) {
                self.roll(now_ms)?;
            }
            doomed.extend(
                self.closed
                    .values()
                    .take_while(|s| expired(s))
                    .map(Segment::base_offset),
            );
        }
        if self.config.retention_bytes >= 0 {
            let mut total: u64 = self.size_bytes();
            for (base, seg) in &self.closed {
                if total < self.config.retention_bytes as u64 + seg.size() {
                    break;
                }
                total -= seg.size();
                if !doomed.contains(base) {
                    doomed.push(*base);
                }
            }
        }
        let n = doomed.len();
        if n > 0 {
            self.delete_segments(&doomed)?;
            self.write_meta()?;
        }
        Ok(n)
    }

    /// Deletes every file of the log (DeleteTopics).
    pub fn remove(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        fs::remove_dir_all(&dir).at(&dir)
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.next_offset
    }
    pub fn producers(&self) -> &ProducerState {
        &self.producers
    }
    pub fn producers_mut(&mut self) -> &mut ProducerState {
        // Whatever the caller changes must reach the next snapshot.
        self.checkpointed = None;
        &mut self.producers
    }
    pub fn segment_count(&self) -> usize {
        self.closed.len() + 1
    }
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments().map(Segment::base_offset).collect()
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments().map(Segment::size).sum()
    }
    pub fn dir(&self) -> &Path {
        &self.dir
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
