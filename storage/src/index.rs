//! The two sparse per-segment indexes, as typed views over [`IndexFile`].
//!
//! Offset index entry (8 bytes): offset relative to the segment base (u32), byte position in the .log (u32).
//! Time index entry (12 bytes): the segment's running maximum timestamp (i64) up to and including the batch
//! at the relative offset (u32). Because the timestamp is a running maximum, every batch before an entry's
//! offset has a timestamp at most the entry's, which is what makes a sparse time index safe to search.

use std::path::Path;

use crate::error::Result;
use crate::index_file::IndexFile;

pub const OFFSET_ENTRY: usize = 8;
pub const TIME_ENTRY: usize = 12;

fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map_or(i64::MIN, i64::from_be_bytes)
}

pub struct OffsetIndex {
    inner: IndexFile,
    base_offset: i64,
}

impl OffsetIndex {
    pub fn open(path: &Path, base_offset: i64, max_bytes: usize, trusted: bool) -> Result<Self> {
        let inner = if trusted {
            IndexFile::sealed(path, OFFSET_ENTRY, max_bytes)?
        } else {
            IndexFile::new(path, OFFSET_ENTRY, max_bytes)
        };
        Ok(OffsetIndex { inner, base_offset })
    }

    /// Records that the batch starting at `offset` sits at byte `position`.
    pub fn append(&mut self, offset: i64, position: u32) -> bool {
        let mut e = [0u8; OFFSET_ENTRY];
        e[..4].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.inner.push(&e)
    }

    /// The (offset, position) of the last indexed batch starting at or before `offset`.
    pub fn lookup(&self, offset: i64) -> (i64, u32) {
        let rel = offset
            .saturating_sub(self.base_offset)
            .clamp(0, i64::from(u32::MAX)) as u32;
        match self.inner.floor(&rel, |e| u32_at(e, 0)) {
            Some(i) => {
                let e = self.inner.entry(i);
                (self.base_offset + i64::from(u32_at(e, 0)), u32_at(e, 4))
            }
            None => (self.base_offset, 0),
        }
    }

    pub fn last_offset(&self) -> Option<i64> {
        let n = self.inner.len();
        (n > 0).then(|| self.base_offset + i64::from(u32_at(self.inner.entry(n - 1), 0)))
    }

    /// Checks what a clean open trusts: offsets and positions strictly increasing, positions inside a log
    /// of `log_len` bytes, the first entry (if any) at position 0. Returns what is wrong.
    pub fn check(&self, log_len: u64) -> std::result::Result<(), String> {
        let mut prev: Option<(u32, u32)> = None;
        for i in 0..self.inner.len() {
            let e = self.inner.entry(i);
            let (rel, pos) = (u32_at(e, 0), u32_at(e, 4));
            if u64::from(pos) >= log_len {
                return Err(format!(
                    "entry {i} points at byte {pos}, past the log's {log_len}"
                ));
            }
            match prev {
                None if pos != 0 || rel != 0 => {
                    return Err(format!(
                        "first entry is ({rel}, {pos}), not the segment start"
                    ))
                }
                Some((r, p)) if rel <= r || pos <= p => {
                    return Err(format!(
                        "entry {i} ({rel}, {pos}) does not follow ({r}, {p})"
                    ))
                }
                _ => {}
            }
            prev = Some((rel, pos));
        }
        Ok(())
    }

    /// The (offset, position) of the last entry, if any.
    pub fn last_entry(&self) -> Option<(i64, u32)> {
        let n = self.inner.len();
        (n > 0).then(|| {
            let e = self.inner.entry(n - 1);
            (self.base_offset + i64::from(u32_at(e, 0)), u32_at(e, 4))
        })
    }

    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }
    pub fn reset(&mut self) {
        self.inner.reset()
    }
    pub fn seal(&mut self) -> Result<()> {
        self.inner.seal()
    }
    pub fn path(&self) -> &Path {
        self.inner.path()
    }
}

pub struct TimeIndex {
    inner: IndexFile,
    base_offset: i64,
}

impl TimeIndex {
    pub fn open(path: &Path, base_offset: i64, max_bytes: usize, trusted: bool) -> Result<Self> {
        let inner = if trusted {
            IndexFile::sealed(path, TIME_ENTRY, max_bytes)?
        } else {
            IndexFile::new(path, TIME_ENTRY, max_bytes)
        };
        Ok(TimeIndex { inner, base_offset })
    }

    /// Records the running max timestamp as of the batch at `offset`; only called when the maximum grew.
    pub fn append(&mut self, max_timestamp: i64, offset: i64) -> bool {
        let mut e = [0u8; TIME_ENTRY];
        e[..8].copy_from_slice(&max_timestamp.to_be_bytes());
        e[8..].copy_from_slice(&((offset - self.base_offset) as u32).to_be_bytes());
        self.inner.push(&e)
    }

    /// The offset of the last entry whose running max is strictly below `timestamp`: every batch up to and
    /// including that offset is older than `timestamp`, so a search may start there.
    pub fn last_offset_before(&self, timestamp: i64) -> Option<i64> {
        let target = timestamp.saturating_sub(1);
        self.inner
            .floor(&target, |e| i64_at(e, 0))
            .map(|i| self.base_offset + i64::from(u32_at(self.inner.entry(i), 8)))
    }

    /// The largest timestamp recorded, if any.
    pub fn last_timestamp(&self) -> Option<i64> {
        let n = self.inner.len();
        (n > 0).then(|| i64_at(self.inner.entry(n - 1), 0))
    }

    /// Checks what a clean open trusts: timestamps and offsets never decreasing, offsets below the segment's
    /// end. Returns what is wrong.
    pub fn check(&self, next_offset: i64) -> std::result::Result<(), String> {
        let mut prev: Option<(i64, u32)> = None;
        for i in 0..self.inner.len() {
            let e = self.inner.entry(i);
            let (ts, rel) = (i64_at(e, 0), u32_at(e, 8));
            if self.base_offset + i64::from(rel) >= next_offset {
                return Err(format!(
                    "entry {i} names offset {}, past the segment's end {next_offset}",
                    self.base_offset + i64::from(rel)
                ));
            }
            if let Some((t, r)) = prev {
                if ts < t || rel < r {
                    return Err(format!("entry {i} ({ts}, {rel}) goes back from ({t}, {r})"));
                }
            }
            prev = Some((ts, rel));
        }
        Ok(())
    }

    pub fn is_full(&self) -> bool {
        self.inner.is_full()
    }
    pub fn reset(&mut self) {
        self.inner.reset()
    }
    pub fn seal(&mut self) -> Result<()> {
        self.inner.seal()
    }
    pub fn path(&self) -> &Path {
        self.inner.path()
    }
}
