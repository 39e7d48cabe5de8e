//! Cluster mode: the groups this broker holds. A group is installed from the rows its claim read, forgotten
//! when its claim moves to another broker (or a write of it was refused), and the outcomes of transactions
//! that carried its offsets (marker rows written by their coordinators) are applied here.

use std::collections::HashMap;
use std::sync::Arc;

use super::{groups_from, GroupCoordinator, GroupSettings, Inner};
use crate::cluster::coordinator_store::{Claimed, CoordinatorStore, KeyKind, TxnMarker};
use crate::coordinator_ownership::KeyHolder;
use crate::groups::store::{load_records, Change, GroupStore};

impl GroupCoordinator {
    /// A coordinator for a cluster: groups are loaded as this broker claims them.
    pub fn open_shared(records: Arc<CoordinatorStore>, settings: GroupSettings) -> Self {
        Self::with_store(GroupStore::shared(records), HashMap::new(), settings)
    }

    /// Applies transaction outcomes, in the order given, to the groups this broker holds.
    pub fn apply_markers(&self, markers: &[TxnMarker]) {
        let mut inner = self.lock();
        for m in markers {
            if inner.epoch(&m.group).is_some() {
                inner.apply_marker(m);
            }
        }
    }
}

impl Inner {
    fn epoch(&self, group: &str) -> Option<i64> {
        match &self.store {
            GroupStore::Shared(s) => s.epoch(group),
            GroupStore::Local(_) => None,
        }
    }

    fn apply_marker(&mut self, marker: &TxnMarker) {
        let (group, producer_id) = (marker.group.as_str(), marker.producer_id);
        if let Err(e) = self.settle_txn(group, producer_id, marker.commit) {
            tracing::error!(group, producer_id, error = %e, "cannot settle transactional offsets");
            return;
        }
        let applied = Change::MarkerApplied {
            group: group.to_string(),
            seq: marker.seq,
        };
        if let Err(e) = self.store.write(&[applied]) {
            tracing::error!(group, producer_id, error = %e, "cannot record a settled transaction");
        }
    }
}

impl KeyHolder for GroupCoordinator {
    const KIND: KeyKind = KeyKind::Group;

    fn epoch(&self, group: &str) -> Option<i64> {
        self.lock().epoch(group)
    }

    fn install(&self, group: &str, claimed: Claimed) -> Result<(), String> {
        let mut groups = groups_from(load_records(&claimed.records)?);
        let mut inner = self.lock();
        let GroupStore::Shared(shared) = &mut inner.store else {
            return Ok(());
        };
        shared.hold(group, claimed.epoch);
        match groups.remove(group) {
            Some(g) => inner.groups.insert(group.to_string(), g),
            None => inner.groups.remove(group),
        };
        for marker in &claimed.markers {
            inner.apply_marker(marker);
        }
        Ok(())
    }

    fn unload(&self, group: &str, epoch: Option<i64>) {
        let mut inner = self.lock();
        let GroupStore::Shared(shared) = &mut inner.store else {
            return;
        };
        if !shared.release(group, epoch) {
            return;
        }
        // Waiting joins and syncs see their group gone and answer so; the members find the new coordinator.
        inner.groups.remove(group);
    }

    fn held(&self) -> Vec<(String, i64)> {
        match &self.lock().store {
            GroupStore::Shared(s) => s.held(),
            GroupStore::Local(_) => Vec::new(),
        }
    }
}
