//! Cluster mode's housekeeping, done by the one broker the placement names for it (any broker could; one
//! avoids doing the work three times): retention of every shared partition, then the objects no batch names
//! any more, then uploads that were never committed.

use crate::broker::Broker;
use crate::cluster::{orphans, retention};

/// The placement key of the housekeeping (a kind of its own, next to groups' 0 and transactions' 1).
const KIND: i8 = 2;
const KEY: &str = "housekeeping";

impl Broker {
    pub async fn cluster_housekeeping(&self) {
        let Some(node) = &self.cluster else {
            return;
        };
        if self.coordinator_node(KIND, KEY) != self.node_id {
            return;
        }
        let client = match node.db.client().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "housekeeping skipped: no metadata database");
                return;
            }
        };
        let now = runnel_storage::now_ms();
        for p in self.every_partition() {
            let Some(shared) = p.shared_log() else {
                continue;
            };
            match retention::cut(&*client, shared.topic_id(), p.index, &shared.config(), now).await
            {
                Ok(Some(offset)) => match p.delete_records_before(offset).await {
                    Ok(start) => {
                        tracing::info!(topic = %p.topic, partition = p.index, log_start = start, "retention deleted batches")
                    }
                    Err(e) => {
                        tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                    }
                },
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                }
            }
        }
        if let Err(e) =
            retention::collect_unreferenced(&node.store, &*client, node.delete_grace).await
        {
            tracing::warn!(error = %e, "cannot delete unreferenced objects");
        }
        if let Err(e) = orphans::collect(&node.store, &*client, orphans::DEFAULT_GRACE).await {
            tracing::warn!(error = %e, "cannot collect orphan uploads");
        }
    }
}
