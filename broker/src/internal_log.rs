//! The broker's own compacted logs (`__consumer_offsets-0`, `__transaction_state-0`): opened like any
//! partition log with compaction on, and replayed record by record at start to rebuild coordinator state.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use runnel_storage::{LogConfig, PartitionLog, StorageError};

/// Opens (recovering if needed) an internal log in the data directory.
pub fn open(data_dir: &Path, name: &str, clean: bool) -> Result<PartitionLog, StorageError> {
    let mut overrides = BTreeMap::new();
    overrides.insert("cleanup.policy".to_string(), "compact".to_string());
    overrides.insert("segment.bytes".to_string(), (100 * 1024 * 1024).to_string());
    let config = LogConfig::resolve(&overrides, &BTreeMap::new());
    PartitionLog::open(
        &data_dir.join(name),
        config,
        clean,
        runnel_storage::now_ms(),
    )
}

/// Calls `apply(key, value)` for every record in order. A corrupt batch, a record without a key, or a
/// record `apply` cannot read stops the replay with an error naming its offset: coordinator state is never
/// rebuilt with a record silently left out (an unreadable value read as a deletion would lose it).
pub fn replay(
    log: &PartitionLog,
    mut apply: impl FnMut(Bytes, Option<Bytes>) -> Result<(), String>,
) -> Result<(), StorageError> {
    let mut failure = None;
    let corrupt = |offset: i64, reason: String| StorageError::CorruptFile {
        path: log.dir().display().to_string(),
        reason: format!("record at offset {offset}: {reason}"),
    };
    log.scan_batches(log.log_start_offset(), |h, bytes| {
        let records = match runnel_storage::records::read_records(&bytes, h) {
            Ok(records) => records,
            Err(e) => {
                failure = Some(corrupt(h.base_offset, e.to_string()));
                return false;
            }
        };
        for r in records {
            let applied = match r.key {
                Some(k) => apply(k, r.value),
                None => Err("no key".into()),
            };
            if let Err(reason) = applied {
                failure = Some(corrupt(r.offset, reason));
                return false;
            }
        }
        true
    })?;
    failure.map_or(Ok(()), Err)
}

/// A replayed record's JSON value: `None` for a tombstone, an error for anything unreadable.
pub fn json_value<T: serde::de::DeserializeOwned>(
    value: Option<&[u8]>,
) -> Result<Option<T>, String> {
    value
        .map(|v| serde_json::from_slice(v).map_err(|e| format!("unreadable value: {e}")))
        .transpose()
}
