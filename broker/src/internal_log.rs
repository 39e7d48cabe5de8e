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

/// Calls `apply(key, value)` for every record in order; a corrupt batch stops the replay with its error.
pub fn replay(
    log: &PartitionLog,
    mut apply: impl FnMut(Bytes, Option<Bytes>),
) -> Result<(), StorageError> {
    let mut failure = None;
    log.scan_batches(
        log.log_start_offset(),
        |h, bytes| match runnel_storage::records::read_records(&bytes, h) {
            Ok(records) => {
                for r in records {
                    if let Some(k) = r.key {
                        apply(k, r.value);
                    }
                }
                true
            }
            Err(e) => {
                failure = Some(e);
                false
            }
        },
    )?;
    failure.map_or(Ok(()), Err)
}
