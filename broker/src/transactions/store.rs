//! Durable transaction coordinator state: one record per transactional id (its latest metadata) in an
//! internal compacted log (`__transaction_state-0` in the data directory), replayed at start.

use std::collections::BTreeMap;
use std::path::Path;

use runnel_storage::builder::{BatchBuilder, Record};
use runnel_storage::{LogConfig, PartitionLog, StorageError};

use super::coordinator::TxnMeta;

pub const LOG_DIR: &str = "__transaction_state-0";

pub struct TxnStore {
    log: PartitionLog,
}

impl TxnStore {
    pub fn open(
        data_dir: &Path,
        clean: bool,
    ) -> Result<(Self, BTreeMap<String, TxnMeta>), StorageError> {
        let mut overrides = BTreeMap::new();
        overrides.insert("cleanup.policy".to_string(), "compact".to_string());
        overrides.insert("segment.bytes".to_string(), (100 * 1024 * 1024).to_string());
        let config = LogConfig::resolve(&overrides, &BTreeMap::new());
        let log = PartitionLog::open(
            &data_dir.join(LOG_DIR),
            config,
            clean,
            runnel_storage::now_ms(),
        )?;
        let mut state = BTreeMap::new();
        let mut failure = None;
        log.scan_batches(log.log_start_offset(), |h, bytes| {
            match runnel_storage::records::read_records(&bytes, h) {
                Ok(records) => {
                    for r in records {
                        let Some(key) = r.key.map(|k| String::from_utf8_lossy(&k).into_owned())
                        else {
                            continue;
                        };
                        match r
                            .value
                            .and_then(|v| serde_json::from_slice::<TxnMeta>(&v).ok())
                        {
                            Some(meta) => state.insert(key, meta),
                            None => state.remove(&key),
                        };
                    }
                    true
                }
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok((TxnStore { log }, state))
    }

    /// Persists a transactional id's metadata before the coordinator acts on it.
    pub fn write(&mut self, transactional_id: &str, meta: &TxnMeta) -> Result<(), StorageError> {
        let value =
            serde_json::to_vec(meta).map_err(|e| StorageError::CorruptCatalog(e.to_string()))?;
        let now = runnel_storage::now_ms();
        let mut batch = BatchBuilder::default().build(&[Record {
            timestamp: now,
            key: Some(transactional_id.as_bytes()),
            value: Some(&value),
            headers: &[],
        }]);
        self.log.append(&mut batch, now)?;
        Ok(())
    }

    pub fn log_mut(&mut self) -> &mut PartitionLog {
        &mut self.log
    }
}
