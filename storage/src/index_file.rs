//! A fixed-entry-size index: in memory while its segment is active, a read-only mapped file once sealed.
//!
//! The active segment's entries live in a `Vec` and reach the disk only when the segment is sealed (rolled or
//! cleanly closed), written beside the old file and renamed over it. That costs nothing per append, holds no
//! file descriptor, preallocates nothing, and a full disk can only fail the seal with an error: a write
//! through a mapped page of a sparse file would have killed the process with SIGBUS instead. After an
//! unclean stop the active segment is rebuilt from its log anyway, so its index needs no durability earlier.
//! A sealed index is mapped on first use and the file closed right away, so idle segments cost neither memory
//! nor descriptors, and no file is ever shrunk in place while mapped. This module holds the crate's only
//! `unsafe` code.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;

use crate::error::{IoContext, Result};

enum Entries {
    /// The active segment's entries, appended in memory.
    Open(Vec<u8>),
    /// A sealed segment's file: `len` entries, mapped when first read (None: empty, or the map failed, in
    /// which case lookups scan the log from the segment's start: slower, still correct).
    Sealed {
        len: usize,
        map: OnceLock<Option<Mmap>>,
    },
}

pub struct IndexFile {
    path: PathBuf,
    entry_size: usize,
    max_entries: usize,
    entries: Entries,
}

impl IndexFile {
    /// An empty index to append to (a new segment, or one being rebuilt).
    pub fn new(path: &Path, entry_size: usize, max_bytes: usize) -> Self {
        IndexFile {
            path: path.to_path_buf(),
            entry_size,
            max_entries: (max_bytes / entry_size).max(1),
            entries: Entries::Open(Vec::new()),
        }
    }

    /// The index a sealed segment left on disk; whole entries only, a missing file is an empty index.
    pub fn sealed(path: &Path, entry_size: usize, max_bytes: usize) -> Result<Self> {
        let bytes = match std::fs::metadata(path) {
            Ok(m) => m.len() as usize,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).at(path),
        };
        let len = bytes / entry_size;
        Ok(IndexFile {
            path: path.to_path_buf(),
            entry_size,
            max_entries: (max_bytes / entry_size).max(len).max(1),
            entries: Entries::Sealed {
                len,
                map: OnceLock::new(),
            },
        })
    }

    #[allow(unsafe_code)]
    fn map_file(path: &Path) -> std::io::Result<Mmap> {
        let file = File::open(path)?;
        // SAFETY: Runnel never writes to or shrinks a sealed index file: a new one is written beside it and
        // renamed over it, so this mapping's pages stay valid; other processes are not expected to modify
        // the data directory while the broker runs (a damaged file is caught by the checks at open).
        unsafe { Mmap::map(&file) }
    }

    fn bytes(&self) -> &[u8] {
        match &self.entries {
            Entries::Open(v) => v,
            Entries::Sealed { len: 0, .. } => &[],
            Entries::Sealed { len, map } => {
                let map = map.get_or_init(|| match Self::map_file(&self.path) {
                    Ok(m) => Some(m),
                    Err(e) => {
                        tracing::warn!(index = %self.path.display(), error = %e, "cannot map index; scanning the log instead");
                        None
                    }
                });
                map.as_deref()
                    .and_then(|m| m.get(..len * self.entry_size))
                    .unwrap_or_default()
            }
        }
    }

    pub fn len(&self) -> usize {
        self.bytes().len() / self.entry_size
    }
    pub fn is_full(&self) -> bool {
        self.len() >= self.max_entries
    }

    /// The raw bytes of entry `i` (empty past the end).
    pub fn entry(&self, i: usize) -> &[u8] {
        let at = i.saturating_mul(self.entry_size);
        self.bytes()
            .get(at..at.saturating_add(self.entry_size))
            .unwrap_or_default()
    }

    /// Appends one entry; returns false (and writes nothing) when the index is full.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        if self.is_full() || bytes.len() != self.entry_size {
            return false;
        }
        self.unseal();
        if let Entries::Open(v) = &mut self.entries {
            v.extend_from_slice(bytes);
            return true;
        }
        false
    }

    /// Makes a sealed index appendable again (the last segment after a clean start).
    fn unseal(&mut self) {
        if let Entries::Sealed { .. } = self.entries {
            self.entries = Entries::Open(self.bytes().to_vec());
        }
    }

    /// Binary search for the last entry whose key (decoded by `key`) is <= `target`.
    pub fn floor<K: Ord>(&self, target: &K, key: impl Fn(&[u8]) -> K) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.len());
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
        self.entries = Entries::Open(Vec::new());
    }

    /// Writes the entries to the file (atomically replacing it) and seals the index. On failure (a full
    /// disk) the entries stay in memory and the index stays open.
    pub fn seal(&mut self) -> Result<()> {
        let Entries::Open(v) = &self.entries else {
            return Ok(());
        };
        // A missing file is an empty index: an empty segment's seal writes nothing. No fsync either: a
        // sealed index is checked against its log when trusted and rebuilt when it does not match.
        if !v.is_empty() || self.path.exists() {
            crate::atomic_file::write_unsynced(&self.path, v)?;
        }
        let len = v.len() / self.entry_size;
        self.max_entries = self.max_entries.max(len).max(1);
        self.entries = Entries::Sealed {
            len,
            map: OnceLock::new(),
        };
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: &[u8]) -> u64 {
        b.try_into().map_or(0, u64::from_be_bytes)
    }

    #[test]
    fn entries_survive_seal_and_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.index");
        let mut idx = IndexFile::new(&path, 8, 800);
        for i in 0u64..10 {
            assert!(idx.push(&(i * 10).to_be_bytes()));
        }
        assert_eq!(idx.floor(&55, key), Some(5));
        assert_eq!(idx.floor(&0, key), Some(0));
        idx.seal().expect("seal");
        assert_eq!(idx.floor(&95, key), Some(9), "readable once sealed");
        drop(idx);
        assert_eq!(std::fs::metadata(&path).expect("meta").len(), 80);
        let mut idx = IndexFile::sealed(&path, 8, 800).expect("reopen");
        assert_eq!(idx.len(), 10);
        assert_eq!(idx.floor(&95, key), Some(9));
        assert!(
            idx.push(&100u64.to_be_bytes()),
            "a reopened index takes appends"
        );
        assert_eq!(idx.len(), 11);
    }

    #[test]
    fn a_full_index_refuses_more_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut idx = IndexFile::new(&dir.path().join("y"), 8, 16);
        assert!(idx.push(&[0; 8]));
        assert!(idx.push(&[1; 8]));
        assert!(!idx.push(&[2; 8]));
    }

    #[test]
    fn a_missing_file_is_an_empty_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let idx = IndexFile::sealed(&dir.path().join("none"), 8, 16).expect("open");
        assert_eq!(idx.len(), 0);
        assert_eq!(idx.floor(&1, key), None);
    }
}
