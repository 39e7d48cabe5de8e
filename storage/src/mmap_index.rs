//! A fixed-entry-size index file accessed through a writable memory map.
//!
//! The file is preallocated to its maximum size so appends never grow a mapped file, and it is trimmed to the
//! entries actually written only after the map is dropped: shrinking a mapped file would kill readers of the
//! cut pages with SIGBUS. This module holds the crate's only `unsafe` code.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

use crate::error::{IoContext, Result};

pub struct MmapIndex {
    path: PathBuf,
    file: File,
    map: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    max_entries: usize,
}

impl MmapIndex {
    /// Opens (or creates) the index. `keep_entries` says how many existing entries are trusted: all of them
    /// after a clean stop (`None`), or zero when the caller is about to rebuild it.
    pub fn open(
        path: &Path,
        entry_size: usize,
        max_bytes: usize,
        keep_entries: Option<usize>,
    ) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        let existing = file.metadata().at(path)?.len() as usize / entry_size;
        let max_entries = (max_bytes / entry_size).max(existing).max(1);
        let entries = keep_entries.map_or(existing, |k| k.min(existing));
        file.set_len((max_entries * entry_size) as u64).at(path)?;
        let mut index = MmapIndex {
            path: path.to_path_buf(),
            file,
            map: None,
            entry_size,
            entries,
            max_entries,
        };
        index.map = Some(index.map_file()?);
        Ok(index)
    }

    #[allow(unsafe_code)]
    fn map_file(&self) -> Result<MmapMut> {
        // SAFETY: the file is owned by this struct and never shrunk while mapped (see `trim` and `reset`);
        // other processes are not expected to modify Runnel's data directory while it runs.
        unsafe { MmapMut::map_mut(&self.file) }.at(&self.path)
    }

    pub fn len(&self) -> usize {
        self.entries
    }
    pub fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    /// The raw bytes of entry `i`.
    pub fn entry(&self, i: usize) -> &[u8] {
        match &self.map {
            Some(map) if i < self.entries => &map[i * self.entry_size..(i + 1) * self.entry_size],
            _ => &[],
        }
    }

    /// Appends one entry; returns false (and writes nothing) when the index is full.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if self.is_full() || bytes.len() != self.entry_size {
            return false;
        }
        let at = self.entries * self.entry_size;
        match &mut self.map {
            Some(map) => {
                map[at..at + self.entry_size].copy_from_slice(bytes);
                self.entries += 1;
                true
            }
            None => false,
        }
    }

    /// Binary search for the last entry whose key (decoded by `key`) is <= `target`.
    pub fn floor<K: Ord>(&self, target: &K, key: impl Fn(&[u8]) -> K) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if key(self.entry(mid)) <= *target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    /// Drops every entry (before a rebuild).
    pub fn reset(&mut self) {
        self.entries = 0;
    }

    /// Writes dirty pages to disk.
    pub fn flush(&self) -> Result<()> {
        if let Some(map) = &self.map {
            map.flush().at(&self.path)?;
        }
        Ok(())
    }

    /// Unmaps, then shrinks the file to the written entries: done when a segment is closed or rolled, so that
    /// the file length tells the next start how many entries are valid.
    pub fn trim(&mut self) -> Result<()> {
        self.flush()?;
        self.map = None;
        self.file
            .set_len((self.entries * self.entry_size) as u64)
            .at(&self.path)?;
        self.max_entries = self.entries.max(1);
        if self.entries > 0 {
            self.map = Some(self.map_file()?);
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_trim_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.index");
        let mut idx = MmapIndex::open(&path, 8, 800, None).expect("open");
        for i in 0u64..10 {
            assert!(idx.push(&(i * 10).to_be_bytes()));
        }
        let key = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
        assert_eq!(idx.floor(&55, key), Some(5));
        assert_eq!(idx.floor(&0, key), Some(0));
        idx.trim().expect("trim");
        drop(idx);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 80);
        let idx = MmapIndex::open(&path, 8, 800, None).expect("reopen");
        assert_eq!(idx.len(), 10);
        assert_eq!(idx.floor(&95, key), Some(9));
    }

    #[test]
    fn a_full_index_refuses_more_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = MmapIndex::open(&dir.path().join("y"), 8, 16, Some(0)).expect("open");
        assert!(idx.push(&[0; 8]));
        assert!(idx.push(&[1; 8]));
        assert!(!idx.push(&[2; 8]));
    }
}
