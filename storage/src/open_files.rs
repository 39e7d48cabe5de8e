//! A process-wide bound on open segment files.
//!
//! Kafka keeps every segment's file open, which is why its operators raise `ulimit -n` per partition. Here a
//! segment opens its `.log` file when it is used and hands it to a least-recently-used set of at most
//! [`set_limit`] files (`log.max.open.files`), so a broker with tens of thousands of idle partitions holds a
//! bounded number of descriptors, however many of them are written to. Closing a descriptor before its
//! data is fsynced hides no error: since Linux 4.16 a writeback error nobody has seen yet is reported to
//! the next fsync of the file through any descriptor, one opened later included (the errseq "report
//! once" rule PostgreSQL relies on since fsyncgate).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{IoContext, Result};

/// Default bound on cached open segment files.
pub const DEFAULT_LIMIT: usize = 1024;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_LIMIT);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Sets how many segment files stay open when idle (at least 16).
pub fn set_limit(limit: usize) {
    LIMIT.store(limit.max(16), Ordering::Relaxed);
}

/// How many segment files the cache holds open right now.
pub fn cached() -> usize {
    lock().files.len()
}

#[derive(Default)]
struct Lru {
    files: HashMap<u64, (Arc<File>, u64)>,
    by_use: BTreeMap<u64, u64>,
    clock: u64,
}

fn lock() -> std::sync::MutexGuard<'static, Lru> {
    static CACHE: OnceLock<Mutex<Lru>> = OnceLock::new();
    CACHE
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

impl Lru {
    fn touch(&mut self, id: u64) -> Option<Arc<File>> {
        self.clock += 1;
        let clock = self.clock;
        let (file, used) = self.files.get_mut(&id)?;
        self.by_use.remove(used);
        *used = clock;
        self.by_use.insert(clock, id);
        Some(Arc::clone(file))
    }

    fn insert(&mut self, id: u64, file: Arc<File>) {
        while self.files.len() >= LIMIT.load(Ordering::Relaxed) {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            // Readers still holding the Arc keep the descriptor until they finish.
            self.files.remove(&oldest);
        }
        self.clock += 1;
        self.by_use.insert(self.clock, id);
        self.files.insert(id, (file, self.clock));
    }

    fn forget(&mut self, id: u64) {
        if let Some((_, used)) = self.files.remove(&id) {
            self.by_use.remove(&used);
        }
    }
}

/// One segment's `.log` file, opened on demand through the shared cache.
pub struct SegmentFile {
    id: u64,
    path: PathBuf,
}

impl SegmentFile {
    /// Creates (or truncates) the file.
    pub fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .at(path)?;
        let handle = Self::existing(path);
        lock().insert(handle.id, Arc::new(file));
        Ok(handle)
    }

    /// Refers to an existing file without opening it yet.
    pub fn existing(path: &Path) -> Self {
        SegmentFile {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            path: path.to_path_buf(),
        }
    }

    /// The open file, from the cache or opened now.
    pub fn get(&self) -> Result<Arc<File>> {
        if let Some(f) = lock().touch(self.id) {
            return Ok(f);
        }
        let file = Arc::new(
            OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.path)
                .at(&self.path)?,
        );
        lock().insert(self.id, Arc::clone(&file));
        Ok(file)
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        lock().forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn files_reopen_after_eviction_and_stay_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut files: Vec<SegmentFile> = (0..3000)
            .map(|i| SegmentFile::create(&dir.path().join(format!("{i}.log"))).expect("create"))
            .collect();
        for (i, f) in files.iter().enumerate() {
            f.get()
                .expect("open")
                .write_all_at(format!("file {i}").as_bytes(), 0)
                .expect("write");
        }
        assert!(
            cached() <= LIMIT.load(Ordering::Relaxed),
            "the cache stays bounded"
        );
        let mut buf = [0u8; 6];
        files[0]
            .get()
            .expect("reopen")
            .read_exact_at(&mut buf, 0)
            .expect("read");
        assert_eq!(&buf, b"file 0", "an evicted file reopens with its data");
        let id = files[5].id;
        drop(files.remove(5));
        assert!(
            lock().touch(id).is_none(),
            "a dropped segment leaves the cache"
        );
    }
}
