//! Durable group state: committed offsets and group metadata as records, the last record of a key winning
//! and a tombstone deleting it. Keys and values are JSON: small, versionable and readable with `runnel`
//! tools. On a single node the records are an internal, compacted log (`__consumer_offsets-0` in the data
//! directory), replayed at start; in a cluster they are rows of the metadata database, one set per group,
//! written by the broker holding the group's claim (see `cluster::coordinator_store`).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::cluster::coordinator_store::{CoordinatorStore, HeldKeys, KeyKind, RecordWrite};

use runnel_storage::builder::{BatchBuilder, Record};
use runnel_storage::{PartitionLog, StorageError};
use serde::{Deserialize, Serialize};

use super::group::CommittedOffset;

pub const LOG_DIR: &str = "__consumer_offsets-0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Key {
    #[serde(rename = "o")]
    Offset { g: String, p: String, n: i32 },
    #[serde(rename = "g")]
    Group { g: String },
    /// An offset committed inside a transaction that has not ended yet.
    #[serde(rename = "x")]
    TxnOffset {
        g: String,
        pid: i64,
        p: String,
        n: i32,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberRecord {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocol_type: String,
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GroupRecord {
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: Vec<MemberRecord>,
    pub state_since_ms: i64,
}

/// One change to persist: a key and its new value (None deletes).
pub enum Change {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    Group {
        group: String,
        value: Option<GroupRecord>,
    },
    TxnOffset {
        group: String,
        producer_id: i64,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    /// A transaction's outcome for the group was applied (cluster mode: its marker row goes).
    MarkerApplied { group: String, seq: i64 },
}

impl Change {
    fn group(&self) -> &str {
        match self {
            Change::Offset { group, .. }
            | Change::Group { group, .. }
            | Change::TxnOffset { group, .. }
            | Change::MarkerApplied { group, .. } => group,
        }
    }
}

/// Everything replayed from the log.
#[derive(Default)]
pub struct Loaded {
    pub groups: BTreeMap<String, GroupRecord>,
    pub offsets: BTreeMap<(String, String, i32), CommittedOffset>,
    /// (group, producer id, topic, partition) → offset of an open transaction.
    pub pending: BTreeMap<(String, i64, String, i32), CommittedOffset>,
}

/// Where the records go: the local internal log, or the metadata database under each group's claim.
pub enum GroupStore {
    Local(Box<PartitionLog>),
    /// Cluster mode: the database, and the epoch at which this broker holds each group it has loaded.
    Shared(HeldKeys),
}

/// A record's key and its value (None: a tombstone).
type Encoded = (Vec<u8>, Option<Vec<u8>>);

/// A change as a record; None for changes that are no record.
fn encode(change: &Change) -> Result<Option<Encoded>, serde_json::Error> {
    Ok(Some(match change {
        Change::Offset {
            group,
            topic,
            partition,
            value,
        } => (
            serde_json::to_vec(&Key::Offset {
                g: group.clone(),
                p: topic.clone(),
                n: *partition,
            })?,
            value.as_ref().map(serde_json::to_vec).transpose()?,
        ),
        Change::Group { group, value } => (
            serde_json::to_vec(&Key::Group { g: group.clone() })?,
            value.as_ref().map(serde_json::to_vec).transpose()?,
        ),
        Change::TxnOffset {
            group,
            producer_id,
            topic,
            partition,
            value,
        } => (
            serde_json::to_vec(&Key::TxnOffset {
                g: group.clone(),
                pid: *producer_id,
                p: topic.clone(),
                n: *partition,
            })?,
            value.as_ref().map(serde_json::to_vec).transpose()?,
        ),
        Change::MarkerApplied { .. } => return Ok(None),
    }))
}

impl GroupStore {
    pub fn open(data_dir: &Path, clean: bool) -> Result<(Self, Loaded), StorageError> {
        let log = crate::internal_log::open(data_dir, LOG_DIR, clean)?;
        let mut loaded = Loaded::default();
        crate::internal_log::replay(&log, |key, value| {
            let key =
                serde_json::from_slice::<Key>(&key).map_err(|e| format!("unreadable key: {e}"))?;
            apply(&mut loaded, key, value.as_deref())
        })?;
        Ok((GroupStore::Local(Box::new(log)), loaded))
    }

    /// Cluster mode: nothing is loaded until a group is claimed.
    pub fn shared(records: Arc<CoordinatorStore>) -> Self {
        GroupStore::Shared(HeldKeys::new(records))
    }

    /// Writes the changes. On a single node they are one batch of the log when this returns (fsynced if its
    /// policy says so); in a cluster they are queued for the database, and `GroupCoordinator::durable` waits
    /// for them.
    pub fn write(&mut self, changes: &[Change]) -> Result<(), StorageError> {
        if changes.is_empty() {
            return Ok(());
        }
        let corrupt = |e: serde_json::Error| StorageError::CorruptCatalog(e.to_string());
        match self {
            GroupStore::Local(log) => {
                let encoded: Vec<Encoded> = changes
                    .iter()
                    .map(encode)
                    .filter_map(Result::transpose)
                    .collect::<Result<_, _>>()
                    .map_err(corrupt)?;
                if encoded.is_empty() {
                    return Ok(());
                }
                let now = runnel_storage::now_ms();
                let records: Vec<Record> = encoded
                    .iter()
                    .map(|(k, v)| Record {
                        timestamp: now,
                        key: Some(k),
                        value: v.as_deref(),
                        headers: &[],
                    })
                    .collect();
                let mut batch = BatchBuilder::default().build(&records);
                log.append(&mut batch, now)?;
            }
            GroupStore::Shared(shared) => {
                for change in changes {
                    let group = change.group();
                    let Some(epoch) = shared.epoch(group) else {
                        tracing::error!(
                            group,
                            "a change to a group this broker does not hold was dropped"
                        );
                        continue;
                    };
                    let write = match (change, encode(change).map_err(corrupt)?) {
                        (Change::MarkerApplied { seq, .. }, _) => {
                            RecordWrite::MarkerApplied { seq: *seq }
                        }
                        (_, Some((key, value))) => {
                            let record = String::from_utf8_lossy(&key).into_owned();
                            match value {
                                Some(v) => RecordWrite::Put {
                                    record,
                                    value: String::from_utf8_lossy(&v).into_owned(),
                                },
                                None => RecordWrite::Delete { record },
                            }
                        }
                        (_, None) => continue,
                    };
                    shared
                        .records
                        .enqueue(KeyKind::Group, group, epoch, vec![write]);
                }
            }
        }
        Ok(())
    }

    /// The local log, for its periodic work (flush, compaction, checkpoint) and clean close.
    pub fn log_mut(&mut self) -> Option<&mut PartitionLog> {
        match self {
            GroupStore::Local(log) => Some(log),
            GroupStore::Shared(_) => None,
        }
    }
}

/// A group's state from its database rows (record key, value), as a replay of the log would give it.
pub fn load_records(rows: &[(String, String)]) -> Result<Loaded, String> {
    let mut loaded = Loaded::default();
    for (key, value) in rows {
        let key = serde_json::from_str::<Key>(key).map_err(|e| format!("unreadable key: {e}"))?;
        apply(&mut loaded, key, Some(value.as_bytes()))?;
    }
    Ok(loaded)
}

fn apply(loaded: &mut Loaded, key: Key, value: Option<&[u8]>) -> Result<(), String> {
    use crate::internal_log::json_value;
    match key {
        Key::Offset { g, p, n } => match json_value::<CommittedOffset>(value)? {
            Some(o) => loaded.offsets.insert((g, p, n), o),
            None => loaded.offsets.remove(&(g, p, n)),
        },
        Key::TxnOffset { g, pid, p, n } => match json_value::<CommittedOffset>(value)? {
            Some(o) => loaded.pending.insert((g, pid, p, n), o),
            None => loaded.pending.remove(&(g, pid, p, n)),
        },
        Key::Group { g } => {
            match json_value::<GroupRecord>(value)? {
                Some(r) => {
                    loaded.groups.insert(g, r);
                }
                None => {
                    loaded.groups.remove(&g);
                }
            }
            return Ok(());
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset(value: Option<CommittedOffset>) -> Change {
        Change::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value,
        }
    }

    #[test]
    fn an_unreadable_record_is_corruption_not_a_deletion() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (mut store, _) = GroupStore::open(dir.path(), false).expect("open");
            let committed = CommittedOffset {
                offset: 42,
                leader_epoch: -1,
                metadata: None,
                commit_timestamp: 1,
            };
            store.write(&[offset(Some(committed))]).expect("write");
        }
        let (store, loaded) = GroupStore::open(dir.path(), false).expect("reopen");
        assert_eq!(loaded.offsets.len(), 1, "a readable commit replays");
        let mut store = store;
        let (key, _) = encode(&offset(None)).expect("key").expect("a record");
        let mut batch = BatchBuilder::default().build(&[Record {
            timestamp: 2,
            key: Some(&key),
            value: Some(b"{not json"),
            headers: &[],
        }]);
        store
            .log_mut()
            .expect("a local store")
            .append(&mut batch, 2)
            .expect("append");
        drop(store);
        match GroupStore::open(dir.path(), false) {
            Err(StorageError::CorruptFile { reason, .. }) => {
                assert!(reason.contains("offset 1"), "names the record: {reason}")
            }
            Err(e) => panic!("expected a corrupt-file error, got {e}"),
            Ok(_) => panic!("an unreadable commit must not replay as a deletion"),
        }
    }
}
