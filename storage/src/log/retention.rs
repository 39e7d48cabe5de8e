//! Deleting data: moving the log start offset forward (DeleteRecords), applying `retention.ms` and
//! `retention.bytes` by deleting whole closed segments oldest first, and removing the whole log
//! (DeleteTopics). Producer and aborted-transaction state below the new log start goes with the segments.

use std::fs;

use super::PartitionLog;
use crate::error::{IoContext, Result, StorageError};
use crate::segment::Segment;

impl PartitionLog {
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
}
