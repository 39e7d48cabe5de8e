//! What a partition knows about transactions: which are open (they hold back the last stable offset) and
//! which were aborted (read_committed consumers skip their records). Control batches (COMMIT / ABORT
//! markers) close a producer's open transaction; an ABORT adds an entry to the aborted-transaction index.
//!
//! The index is a file of fixed 24-byte entries (producer id, first offset, last offset), appended as markers
//! are written and rewritten whole when the log is opened or its start moves.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::BatchHeader;
use crate::builder::{BatchBuilder, Record};
use crate::error::{IoContext, Result};
use crate::records::read_records;

const INDEX_FILE: &str = "aborted-txns.idx";
const ENTRY: usize = 24;

/// An aborted transaction's extent in one partition: its first record and its ABORT marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    Abort,
    Commit,
    Other,
}

/// The marker type of a control batch, from its record's key (version i16, type i16).
pub fn control_type(batch: &Bytes, h: &BatchHeader) -> ControlType {
    let key = read_records(batch, h)
        .ok()
        .and_then(|rs| rs.into_iter().next())
        .and_then(|r| r.key);
    match key.as_deref() {
        Some([_, _, 0, 0, ..]) => ControlType::Abort,
        Some([_, _, 0, 1, ..]) => ControlType::Commit,
        _ => ControlType::Other,
    }
}

/// A transaction marker batch as the coordinator writes it to every partition of a transaction.
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Vec<u8> {
    let key = [0u8, 0, 0, u8::from(commit)];
    let mut value = vec![0u8, 0];
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    BatchBuilder {
        producer_id,
        producer_epoch,
        base_sequence: -1,
        transactional: true,
        control: true,
        ..BatchBuilder::default()
    }
    .build(&[Record {
        timestamp: now_ms,
        key: Some(&key),
        value: Some(&value),
        headers: &[],
    }])
}

/// Open transactions by first offset, and the aborted-transaction index.
pub struct TxnState {
    path: PathBuf,
    aborted: Vec<AbortedTxn>,
    /// First offset → producer id of every open transaction.
    pub ongoing: BTreeMap<i64, i64>,
}

fn decode(bytes: &[u8]) -> Vec<AbortedTxn> {
    bytes
        .chunks_exact(ENTRY)
        .map(|c| {
            let n = |i: usize| {
                let mut a = [0u8; 8];
                a.copy_from_slice(&c[i..i + 8]);
                i64::from_be_bytes(a)
            };
            AbortedTxn {
                producer_id: n(0),
                first_offset: n(8),
                last_offset: n(16),
            }
        })
        .collect()
}

fn encode(t: &AbortedTxn) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..8].copy_from_slice(&t.producer_id.to_be_bytes());
    e[8..16].copy_from_slice(&t.first_offset.to_be_bytes());
    e[16..].copy_from_slice(&t.last_offset.to_be_bytes());
    e
}

impl TxnState {
    /// Loads the index entries that end before `replay_from`; later ones are re-derived by replaying the log.
    pub fn open(dir: &Path, replay_from: i64) -> Result<Self> {
        let path = dir.join(INDEX_FILE);
        let aborted = match std::fs::read(&path) {
            Ok(b) => decode(&b)
                .into_iter()
                .filter(|t| t.last_offset < replay_from)
                .collect(),
            Err(_) => Vec::new(),
        };
        Ok(TxnState {
            path,
            aborted,
            ongoing: BTreeMap::new(),
        })
    }

    /// Rewrites the index file from memory (after open or when the log start moved).
    pub fn rewrite(&mut self, log_start: i64) -> Result<()> {
        self.aborted.retain(|t| t.last_offset >= log_start);
        let bytes: Vec<u8> = self.aborted.iter().flat_map(encode).collect();
        // Every open rewrites the index: skip the (two-fsync) write when it would change nothing, which
        // is the common case and keeps a start with many partitions fast.
        let current = match std::fs::read(&self.path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).at(&self.path),
        };
        if current.as_deref().unwrap_or_default() == bytes.as_slice() {
            return Ok(());
        }
        crate::atomic_file::write(&self.path, &bytes)
    }

    /// Applies one batch's effect; call before the producer state records the batch.
    pub fn observe(
        &mut self,
        h: &BatchHeader,
        open_txn_first: Option<i64>,
        control: ControlType,
    ) -> Result<()> {
        if h.is_control() {
            if let Some(first) = open_txn_first {
                self.ongoing.remove(&first);
                if control == ControlType::Abort {
                    let t = AbortedTxn {
                        producer_id: h.producer_id,
                        first_offset: first,
                        last_offset: h.base_offset,
                    };
                    self.aborted.push(t);
                    // Opened per abort (they are rare), so an idle partition holds no descriptor.
                    OpenOptions::new()
                        .append(true)
                        .create(true)
                        .open(&self.path)
                        .and_then(|mut f| f.write_all(&encode(&t)))
                        .at(&self.path)?;
                }
            }
        } else if h.is_transactional() && open_txn_first.is_none() {
            self.ongoing.insert(h.base_offset, h.producer_id);
        }
        Ok(())
    }

    /// The first offset of the oldest open transaction, if any.
    pub fn first_unstable(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Aborted transactions that overlap `[from, to)`.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|t| t.last_offset >= from && t.first_offset < to)
            .copied()
            .collect()
    }
}
