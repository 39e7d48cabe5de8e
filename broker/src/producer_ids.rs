//! Producer ids for idempotent producers: unique for the life of the data directory. Ids are handed out
//! from blocks whose end is made durable before any id of the block is used, so a crash never reuses one.

use std::path::{Path, PathBuf};

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

/// Where blocks come from: a file in the data directory (one node), or the cluster's database sequence.
enum BlockSource {
    File(PathBuf),
    Cluster(String),
}

pub struct ProducerIdAllocator {
    source: BlockSource,
    range: tokio::sync::Mutex<Range>,
}

impl ProducerIdAllocator {
    pub fn open(data_dir: &Path) -> Result<Self, StorageError> {
        let path = data_dir.join(FILE);
        let persisted: Persisted = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(ProducerIdAllocator {
            source: BlockSource::File(path),
            range: tokio::sync::Mutex::new(Range {
                next: persisted.block_end,
                end: persisted.block_end,
            }),
        })
    }

    /// Ids from the cluster database at `metadata_url`: block N is ids N*1000 .. N*1000+999.
    pub fn cluster(metadata_url: String) -> Self {
        ProducerIdAllocator {
            source: BlockSource::Cluster(metadata_url),
            range: tokio::sync::Mutex::new(Range { next: 0, end: 0 }),
        }
    }

    /// The next id. Taking a new block writes a file (on a thread allowed to block) or asks the database
    /// (awaited: blocking a worker on it could starve the very task that drives the database connection).
    pub async fn next_id(&self) -> Result<i64, StorageError> {
        let mut r = self.range.lock().await;
        if r.next >= r.end {
            match &self.source {
                BlockSource::File(path) => {
                    let end = r.end + BLOCK;
                    let bytes = serde_json::to_vec(&Persisted { block_end: end })
                        .map_err(|e| StorageError::CorruptCatalog(e.to_string()))?;
                    tokio::task::block_in_place(|| {
                        runnel_storage::atomic_file::write(path, &bytes)
                    })?;
                    r.end = end;
                }
                BlockSource::Cluster(url) => {
                    let block = cluster_block(url).await?;
                    r.next = block * BLOCK;
                    r.end = r.next + BLOCK;
                }
            }
        }
        let id = r.next;
        r.next += 1;
        Ok(id)
    }
}

async fn cluster_block(url: &str) -> Result<i64, StorageError> {
    let unavailable = |e: &dyn std::fmt::Display| StorageError::Unavailable(e.to_string());
    let client = crate::cluster::connect(url)
        .await
        .map_err(|e| unavailable(&e))?;
    let row = client
        .query_one("SELECT nextval('runnel_producer_id_blocks')", &[])
        .await
        .map_err(|e| unavailable(&e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ProducerIdAllocator::open(dir.path()).expect("open");
        let mut first = Vec::new();
        for _ in 0..3 {
            first.push(a.next_id().await.expect("id"));
        }
        drop(a);
        let b = ProducerIdAllocator::open(dir.path()).expect("reopen");
        let next = b.next_id().await.expect("id");
        assert!(first.iter().all(|&i| i < next));
    }
}
