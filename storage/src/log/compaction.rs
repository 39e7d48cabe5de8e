//! Log compaction for `cleanup.policy=compact`: in closed segments keep only the newest record of each key,
//! and drop tombstones (null values) once they are older than `delete.retention.ms`.
//!
//! Kept records are copied byte for byte into a rebuilt batch with the same base offset, base timestamp,
//! lastOffsetDelta and producer fields, so offsets, timestamps and producer sequences do not move; only the
//! record count, the length and the CRC change (and compression is dropped). A cleaned segment is written
//! beside the old one and renamed over it; readers of the old file keep their open handle.

use std::collections::HashMap;
use std::fs;

use bytes::Bytes;

use super::{settings, PartitionLog};
use crate::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::builder::put_varlong;
use crate::error::{IoContext, Result};
use crate::records::{read_records, RecordView};
use crate::segment::{Segment, SegmentPaths};

/// What one compaction pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments_rewritten: usize,
    pub records_removed: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

/// A batch holding only `kept`, otherwise identical to `original`.
fn rebuild(original: &[u8], kept: &[RecordView]) -> Vec<u8> {
    let mut body = Vec::new();
    for r in kept {
        put_varlong(&mut body, r.raw.len() as i64);
        body.extend_from_slice(&r.raw);
    }
    let mut b = Vec::with_capacity(HEADER_LEN + body.len());
    b.extend_from_slice(&original[..HEADER_LEN]);
    b.extend_from_slice(&body);
    let batch_length = (b.len() - LOG_OVERHEAD) as i32;
    b[8..12].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = i16::from_be_bytes([b[21], b[22]]) & !0x07;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    b[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Notes in `latest` the offset of each key's newest record in `batches` (markers have no keys), so that
/// called over a log's batches in offset order it leaves the offsets compaction keeps.
pub fn note_latest_keys(
    batches: &[(BatchHeader, Bytes)],
    latest: &mut HashMap<Bytes, i64>,
) -> Result<()> {
    for (h, bytes) in batches {
        if h.is_control() {
            continue;
        }
        for r in read_records(bytes, h)? {
            if let Some(k) = r.key {
                latest.insert(k, r.offset);
            }
        }
    }
    Ok(())
}

/// `batches` as compaction leaves them: of each key only the record `latest` names, tombstones (null
/// values) only if newer than `horizon`, records without a key and markers kept; a batch left empty goes.
/// With how many records were removed.
pub fn retain_latest(
    batches: &[(BatchHeader, Bytes)],
    latest: &HashMap<Bytes, i64>,
    horizon: i64,
) -> Result<(Vec<u8>, u64)> {
    let mut out = Vec::with_capacity(batches.iter().map(|(_, b)| b.len()).sum());
    let mut removed = 0u64;
    for (h, bytes) in batches {
        if h.is_control() {
            out.extend_from_slice(bytes);
            continue;
        }
        let records = read_records(bytes, h)?;
        let total = records.len();
        let kept: Vec<RecordView> = records
            .into_iter()
            .filter(|r| match &r.key {
                Some(k) => {
                    latest.get(k) == Some(&r.offset)
                        && !(r.value.is_none() && r.timestamp < horizon)
                }
                None => true,
            })
            .collect();
        removed += (total - kept.len()) as u64;
        if kept.len() == total {
            out.extend_from_slice(bytes);
        } else if !kept.is_empty() {
            out.extend_from_slice(&rebuild(bytes, &kept));
        }
    }
    Ok((out, removed))
}

/// Every batch of a segment with its bytes.
fn batches(seg: &Segment) -> Result<Vec<(BatchHeader, Bytes)>> {
    let mut positions = Vec::new();
    seg.scan_headers(0, |pos, h| {
        positions.push((pos, *h));
        true
    })?;
    positions
        .into_iter()
        .map(|(pos, h)| seg.batch_at(pos, &h).map(|b| (h, b)))
        .collect()
}

impl PartitionLog {
    /// Compacts the closed segments if any closed since the last pass. Holds the log for the duration.
    pub fn compact(&mut self, now_ms: i64) -> Result<CompactionStats> {
        let mut stats = CompactionStats::default();
        let closed_end = self.active.base_offset();
        if !self.config.compact || self.closed.is_empty() || self.compacted_up_to >= closed_end {
            return Ok(stats);
        }
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        for seg in self.closed.values() {
            note_latest_keys(&batches(seg)?, &mut latest)?;
        }
        let horizon = now_ms.saturating_sub(self.config.delete_retention_ms);
        let bases: Vec<i64> = self.closed.keys().copied().collect();
        for base in bases {
            let Some(seg) = self.closed.get(&base) else {
                continue;
            };
            let (out, removed) = retain_latest(&batches(seg)?, &latest, horizon)?;
            if removed == 0 {
                continue;
            }
            stats.bytes_before += seg.size();
            stats.bytes_after += out.len() as u64;
            stats.records_removed += removed;
            stats.segments_rewritten += 1;
            self.replace_segment(base, &out)?;
        }
        self.compacted_up_to = closed_end;
        Ok(stats)
    }

    /// Swaps a closed segment's file for `bytes` and rebuilds its indexes.
    fn replace_segment(&mut self, base: i64, bytes: &[u8]) -> Result<()> {
        let paths = SegmentPaths::new(&self.dir, base);
        let cleaned = paths.log.with_extension("log.cleaned");
        {
            fs::write(&cleaned, bytes).at(&cleaned)?;
            fs::File::open(&cleaned)
                .and_then(|f| f.sync_all())
                .at(&cleaned)?;
        }
        // Drop the old segment first: its cached file handle must not serve the renamed file's readers.
        drop(self.closed.remove(&base));
        fs::rename(&cleaned, &paths.log).at(&paths.log)?;
        let mut rec = Segment::recover(&self.dir, base, settings(&self.config))?;
        rec.segment.seal()?;
        self.closed.insert(base, rec.segment);
        Ok(())
    }
}
