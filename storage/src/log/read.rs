//! The read path: where a fetch reads from (bounded by the high watermark, or by the last stable offset
//! for read_committed reads, with the aborted transactions in range), scanning batches to rebuild state
//! kept in a log, and the ListOffsets lookups by timestamp.

use super::{PartitionLog, ReadPlan, TimestampOffset};
use crate::batch::BatchHeader;
use crate::error::{Result, StorageError};
use crate::records;
use crate::segment::Segment;

impl PartitionLog {
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
}
