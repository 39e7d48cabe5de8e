//! Durable transaction coordinator state: one record per transactional id (its latest metadata) in an
//! internal compacted log (`__transaction_state-0` in the data directory), replayed at start.

use std::collections::BTreeMap;
use std::path::Path;

use runnel_storage::builder::{BatchBuilder, Record};
use runnel_storage::{PartitionLog, StorageError};

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
        let log = crate::internal_log::open(data_dir, LOG_DIR, clean)?;
        let mut state = BTreeMap::new();
        crate::internal_log::replay(&log, |key, value| {
            let key = String::from_utf8(key.to_vec()).map_err(|_| "key is not UTF-8")?;
            match crate::internal_log::json_value::<TxnMeta>(value.as_deref())? {
                Some(meta) => state.insert(key, meta),
                None => state.remove(&key),
            };
            Ok(())
        })?;
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
