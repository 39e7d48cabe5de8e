//! Producer ids for idempotent producers: unique for the life of the data directory. Ids are handed out
//! from blocks whose end is made durable before any id of the block is used, so a crash never reuses one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use runnel_storage::StorageError;
use serde::{Deserialize, Serialize};

const FILE: &str = "producer-ids.json";
const BLOCK: i64 = 1000;

#[derive(Serialize, Deserialize, Default)]
struct Persisted {
    /// Every id below this may have been handed out.
    block_end: i64,
}

struct Range {
    next: i64,
    end: i64,
}

pub struct ProducerIdAllocator {
    path: PathBuf,
    range: Mutex<Range>,
}

impl ProducerIdAllocator {
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let path = data_dir.join(FILE);
        let persisted: Persisted = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(ProducerIdAllocator {
            path,
            range: Mutex::new(Range {
                next: persisted.block_end,
                end: persisted.block_end,
            }),
        })
    }

    pub fn next_id(&self) -> Result<i64, StorageError> {
        let mut r = self.range.lock().unwrap_or_else(|p| p.into_inner());
        if r.next >= r.end {
            let end = r.end + BLOCK;
            let bytes = serde_json::to_vec(&Persisted { block_end: end })
                .map_err(|e| StorageError::CorruptCatalog(e.to_string()))?;
            runnel_storage::atomic_file::write(&self.path, &bytes)?;
            r.end = end;
        }
        let id = r.next;
        r.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ProducerIdAllocator::open(dir.path()).expect("open");
        let first: Vec<i64> = (0..3).map(|_| a.next_id().expect("id")).collect();
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).expect("reopen");
        let next = b.next_id().expect("id");
        assert!(first.iter().all(|&i| i < next));
    }
}
