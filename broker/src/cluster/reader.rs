//! Fetches in cluster mode: offsets → batch rows → byte ranges in object storage, with adjacent batches of
//! one object read in one ranged GET, and each batch's base offset patched into its header as it is served
//! (batches are uploaded as the producer sent them; the offset lies outside the CRC). A bounded cache keeps
//! served and freshly committed batches, so consumers at the tail are answered from memory.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use runnel_storage::batch::BatchHeader;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::batch_index::{self, IndexedBatch};
use super::objects::{ObjectKey, ObjectStorage, ObjectStorageError};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("metadata database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Store(#[from] ObjectStorageError),
    #[error("object {object} is shorter than its batch index says")]
    Short { object: String },
}

type CacheKey = (ObjectKey, u64);

/// Batches by (object, byte offset), already patched, up to a byte budget; the oldest entry goes first.
pub struct ReadCache {
    capacity: usize,
    inner: Mutex<CacheInner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<CacheKey, Bytes>,
    order: VecDeque<CacheKey>,
    bytes: usize,
}

impl ReadCache {
    pub fn new(capacity: usize) -> Self {
        ReadCache {
            capacity,
            inner: Mutex::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, key: &CacheKey) -> Option<Bytes> {
        let found = self.lock().map.get(key).cloned();
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps a batch (larger than the whole budget: not kept).
    pub fn insert(&self, object: ObjectKey, byte_offset: u64, batch: Bytes) {
        if batch.len() > self.capacity {
            return;
        }
        let mut c = self.lock();
        let key = (object, byte_offset);
        if c.map.contains_key(&key) {
            return;
        }
        c.bytes += batch.len();
        c.map.insert(key.clone(), batch);
        c.order.push_back(key);
        while c.bytes > self.capacity {
            let Some(old) = c.order.pop_front() else {
                break;
            };
            if let Some(b) = c.map.remove(&old) {
                c.bytes -= b.len();
            }
        }
    }

    /// (hits, misses) since start, for the cache hit rate metric.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bytes held now.
    pub fn size(&self) -> usize {
        self.lock().bytes
    }
}

/// A batch with its base offset written into its header.
pub(super) fn patched(raw: &[u8], base_offset: i64) -> Bytes {
    let mut b = BytesMut::from(raw);
    if b.len() >= runnel_storage::batch::HEADER_LEN {
        runnel_storage::batch::set_base_offset(&mut b, base_offset);
        runnel_storage::batch::set_partition_leader_epoch(&mut b, 0);
    }
    b.freeze()
}

pub struct PartitionReader {
    store: Arc<ObjectStorage>,
    cache: Arc<ReadCache>,
}

impl PartitionReader {
    pub fn new(store: Arc<ObjectStorage>, cache: Arc<ReadCache>) -> Self {
        PartitionReader { store, cache }
    }

    /// The batches holding `offset` and after, up to about `max_bytes` (at least one when there is one),
    /// each with its offsets in its header, in offset order.
    pub async fn read(
        &self,
        db: &impl GenericClient,
        topic_id: Uuid,
        partition: i32,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Vec<Bytes>, ReadError> {
        let index = batch_index::batches_from(db, topic_id, partition, offset, max_bytes).await?;
        let mut out: Vec<Option<Bytes>> = index
            .iter()
            .map(|b| self.cache.get(&(b.object.clone(), b.byte_offset)))
            .collect();
        // The missing ones, in runs of neighbours within one object: one GET per run.
        let mut i = 0;
        while i < index.len() {
            if out[i].is_some() {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < index.len()
                && out[j].is_none()
                && index[j].object == index[i].object
                && index[j].byte_offset
                    == index[j - 1].byte_offset + u64::from(index[j - 1].byte_length)
            {
                j += 1;
            }
            let run: &[IndexedBatch] = &index[i..j];
            let start = run[0].byte_offset;
            let end = run[run.len() - 1].byte_offset + u64::from(run[run.len() - 1].byte_length);
            let bytes = self.store.get_range(&run[0].object, start..end).await?;
            for (k, b) in run.iter().enumerate() {
                let from = usize::try_from(b.byte_offset - start).unwrap_or(usize::MAX);
                let to = from.saturating_add(b.byte_length as usize);
                let raw = bytes.get(from..to).ok_or_else(|| ReadError::Short {
                    object: b.object.0.clone(),
                })?;
                let batch = patched(raw, b.base_offset);
                self.cache
                    .insert(b.object.clone(), b.byte_offset, batch.clone());
                out[i + k] = Some(batch);
            }
            i = j;
        }
        // A row of a segment covers a run of batches; the ones wholly before `offset` are not served.
        let mut batches = Vec::with_capacity(out.len());
        for (row, bytes) in index.iter().zip(out) {
            if let Some(bytes) = bytes {
                split_batches(bytes, &row.object, offset, &mut batches)?;
            }
        }
        Ok(batches)
    }
}

/// The batches of `bytes` (one row's range) that reach `offset`, each as its own `Bytes`.
fn split_batches(
    bytes: Bytes,
    object: &ObjectKey,
    offset: i64,
    into: &mut Vec<Bytes>,
) -> Result<(), ReadError> {
    for (header, batch) in batches_in(bytes, object)? {
        if header.base_offset + i64::from(header.last_offset_delta) >= offset {
            into.push(batch);
        }
    }
    Ok(())
}

/// The whole batches back to back in `bytes` (read from `object`), with their headers.
pub(super) fn batches_in(
    mut bytes: Bytes,
    object: &ObjectKey,
) -> Result<Vec<(BatchHeader, Bytes)>, ReadError> {
    let short = || ReadError::Short {
        object: object.0.clone(),
    };
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let header = BatchHeader::parse(&bytes).map_err(|_| short())?;
        let len = header.total_len();
        if len > bytes.len() {
            return Err(short());
        }
        out.push((header, bytes.split_to(len)));
    }
    Ok(out)
}
