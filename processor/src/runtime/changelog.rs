//! The job's changelog topic (`<job>-changelog`, compacted, one partition per task partition): each task
//! writes its state changes and a checkpoint record (the batch number and the source offsets it reflects)
//! in the batch's transaction, so reading a partition back with read_committed gives the state as of the
//! last committed batch, exactly.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::ChangelogError;
use crate::state::{Change, Entries};

/// The checkpoint of a task after a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The next batch's number.
    pub next_batch: u64,
    /// topic → next offset to read, for the task's source partitions.
    pub offsets: BTreeMap<String, i64>,
}

pub fn meta_key(stage: usize) -> Bytes {
    Bytes::from(format!("s{stage}/meta"))
}

pub fn store_prefix(stage: usize, store: usize) -> String {
    format!("s{stage}/{store}/")
}

pub fn store_key(stage: usize, store: usize, key: &[u8]) -> Bytes {
    let mut k = store_prefix(stage, store).into_bytes();
    k.extend_from_slice(key);
    Bytes::from(k)
}

/// The changes of one store as changelog (key, value) pairs.
pub fn store_records(
    stage: usize,
    store: usize,
    changes: Vec<Change>,
) -> Vec<(Bytes, Option<Bytes>)> {
    changes
        .into_iter()
        .map(|(k, v)| (store_key(stage, store, &k), v.map(Bytes::from)))
        .collect()
}

/// What a changelog partition holds for one stage: the checkpoint and each store's entries.
#[derive(Debug, Default)]
pub struct Restored {
    pub checkpoint: Option<Checkpoint>,
    pub stores: HashMap<usize, Entries>,
}

/// Folds a partition's records (in offset order; later values win, null deletes) into one stage's state.
pub fn fold(
    stage: usize,
    records: impl IntoIterator<Item = (Bytes, Option<Bytes>)>,
) -> Result<Restored, ChangelogError> {
    let prefix = format!("s{stage}/");
    let meta = meta_key(stage);
    let mut latest: HashMap<Bytes, Option<Bytes>> = HashMap::new();
    for (k, v) in records {
        if k.starts_with(prefix.as_bytes()) {
            latest.insert(k, v);
        }
    }
    let mut out = Restored::default();
    for (k, v) in latest {
        let Some(v) = v else { continue };
        if k == meta {
            out.checkpoint = Some(serde_json::from_slice(&v).map_err(ChangelogError::Checkpoint)?);
            continue;
        }
        let rest = &k[prefix.len()..];
        let Some(slash) = rest.iter().position(|b| *b == b'/') else {
            return Err(ChangelogError::Key(
                String::from_utf8_lossy(&k).into_owned(),
            ));
        };
        let store: usize = std::str::from_utf8(&rest[..slash])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| ChangelogError::Key(String::from_utf8_lossy(&k).into_owned()))?;
        out.stores
            .entry(store)
            .or_default()
            .push((rest[slash + 1..].to_vec(), v.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_keeps_the_latest_value_and_drops_deleted_keys() {
        let cp = Checkpoint {
            next_batch: 7,
            offsets: [("in".to_string(), 42)].into_iter().collect(),
        };
        let recs = vec![
            (store_key(0, 1, b"\"a\""), Some(Bytes::from_static(b"1"))),
            (store_key(0, 1, b"\"b\""), Some(Bytes::from_static(b"2"))),
            (store_key(1, 0, b"\"x\""), Some(Bytes::from_static(b"9"))),
            (store_key(0, 1, b"\"a\""), Some(Bytes::from_static(b"3"))),
            (store_key(0, 1, b"\"b\""), None),
            (
                meta_key(0),
                Some(Bytes::from(
                    serde_json::to_vec(&cp).expect("checkpoint json"),
                )),
            ),
        ];
        let r = fold(0, recs).expect("fold");
        assert_eq!(r.checkpoint, Some(cp));
        assert_eq!(r.stores.len(), 1);
        assert_eq!(r.stores[&1], vec![(b"\"a\"".to_vec(), b"3".to_vec())]);
    }
}
