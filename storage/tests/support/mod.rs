//! Helpers shared by the storage scenario tests.
#![allow(dead_code)]
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::path::Path;

use runnel_storage::builder::{BatchBuilder, Record};
use runnel_storage::{LogConfig, PartitionLog};

pub fn config(pairs: &[(&str, &str)]) -> LogConfig {
    let overrides: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::resolve(&overrides, &BTreeMap::new())
}

/// A batch of `count` records whose values name their index, timestamps `ts, ts+1, ...`.
pub fn batch(count: usize, ts: i64) -> Vec<u8> {
    let values: Vec<String> = (0..count).map(|i| format!("record-{ts}-{i}")).collect();
    let recs: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            timestamp: ts + i as i64,
            key: Some(b"k"),
            value: Some(v.as_bytes()),
            headers: &[],
        })
        .collect();
    BatchBuilder::default().build(&recs)
}

pub fn open(dir: &Path, cfg: &LogConfig, clean: bool) -> PartitionLog {
    PartitionLog::open(dir, cfg.clone(), clean, 1_000).expect("open log")
}

/// Reads every batch from `from` to the end through the fetch path, returning (offset, bytes) per batch.
pub fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let plan = log.read(offset, false).expect("read");
        let Some(slice) = plan.slice else { break };
        let bytes = slice.read(1 << 20).expect("slice");
        assert!(!bytes.is_empty());
        let mut pos = 0;
        while pos < bytes.len() {
            let h = runnel_storage::batch::validate(&bytes[pos..pos + header_len(&bytes[pos..])])
                .expect("valid");
            out.push((h.base_offset, bytes[pos..pos + h.total_len()].to_vec()));
            offset = h.next_offset();
            pos += h.total_len();
        }
    }
    out
}

fn header_len(b: &[u8]) -> usize {
    runnel_storage::batch::BatchHeader::parse(b)
        .expect("header")
        .total_len()
}
