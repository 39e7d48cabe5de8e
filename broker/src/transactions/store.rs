//! Durable transaction coordinator state: one record per transactional id (its latest metadata). On a
//! single node the records are an internal compacted log (`__transaction_state-0` in the data directory),
//! replayed at start; in a cluster they are rows of the metadata database, written by the broker holding
//! the id's claim (see `cluster::coordinator_store`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use runnel_storage::builder::{BatchBuilder, Record};
use runnel_storage::{PartitionLog, StorageError};

use super::coordinator::TxnMeta;
use crate::cluster::coordinator_store::{CoordinatorStore, HeldKeys, KeyKind, RecordWrite};

pub const LOG_DIR: &str = "__transaction_state-0";

/// The record key of a transactional id's metadata among its rows (it has only the one).
pub const META_RECORD: &str = "";

pub enum TxnStore {
    Local(Box<PartitionLog>),
    /// Cluster mode: the database, and the epoch at which this broker holds each transactional id it loaded.
    Shared(HeldKeys),
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
        Ok((TxnStore::Local(Box::new(log)), state))
    }

    pub fn shared(records: Arc<CoordinatorStore>) -> Self {
        TxnStore::Shared(HeldKeys::new(records))
    }

    /// Persists a transactional id's metadata before the coordinator acts on it (in a cluster: queues it,
    /// and the handler waits for it with `Broker::durable`).
    pub fn write(&mut self, transactional_id: &str, meta: &TxnMeta) -> Result<(), StorageError> {
        let value =
            serde_json::to_vec(meta).map_err(|e| StorageError::CorruptCatalog(e.to_string()))?;
        match self {
            TxnStore::Local(log) => {
                let now = runnel_storage::now_ms();
                let mut batch = BatchBuilder::default().build(&[Record {
                    timestamp: now,
                    key: Some(transactional_id.as_bytes()),
                    value: Some(&value),
                    headers: &[],
                }]);
                log.append(&mut batch, now)?;
            }
            TxnStore::Shared(shared) => {
                let Some(epoch) = shared.epoch(transactional_id) else {
                    return Err(StorageError::Unavailable(format!(
                        "transactional id {transactional_id} is not held by this broker"
                    )));
                };
                let write = RecordWrite::Put {
                    record: META_RECORD.to_string(),
                    value: String::from_utf8_lossy(&value).into_owned(),
                };
                shared
                    .records
                    .enqueue(KeyKind::Transaction, transactional_id, epoch, vec![write]);
            }
        }
        Ok(())
    }

    pub fn log_mut(&mut self) -> Option<&mut PartitionLog> {
        match self {
            TxnStore::Local(log) => Some(log),
            TxnStore::Shared(_) => None,
        }
    }
}

/// A transactional id's metadata from its rows.
pub fn load_records(rows: &[(String, String)]) -> Result<Option<TxnMeta>, String> {
    rows.iter()
        .find(|(record, _)| record == META_RECORD)
        .map(|(_, value)| {
            serde_json::from_str(value).map_err(|e| format!("unreadable transaction state: {e}"))
        })
        .transpose()
}
