//! Cluster mode's housekeeping, done by the one broker the placement names for it (any broker could; one
//! avoids doing the work three times): retention of every shared partition, then the compaction of its old
//! batches into segment objects, then the objects no batch names any more, then uploads that were never
//! committed.

use crate::broker::Broker;
use crate::cluster::{object_compaction, orphans, retention};

/// Even one old batch is moved: a quiet partition's last batches would otherwise keep their rounds' objects
/// (and every other partition's bytes in them) for ever.
const MIN_BATCHES_TO_COMPACT: usize = 1;

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
        self.compact_objects(node).await;
        if let Err(e) =
            retention::collect_unreferenced(&node.store, &*client, node.delete_grace).await
        {
            tracing::warn!(error = %e, "cannot delete unreferenced objects");
        }
        if let Err(e) = orphans::collect(&node.store, &*client, orphans::DEFAULT_GRACE).await {
            tracing::warn!(error = %e, "cannot collect orphan uploads");
        }
    }

    async fn compact_objects(&self, node: &crate::cluster::ClusterNode) {
        let mut db = match crate::cluster::connect(node.db.url()).await {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(error = %e, "object compaction skipped: no metadata database");
                return;
            }
        };
        let delay = i64::try_from(node.compaction_delay.as_millis()).unwrap_or(i64::MAX);
        let max_bytes = i64::try_from(node.segment_bytes).unwrap_or(i64::MAX);
        for p in self.every_partition() {
            let Some(shared) = p.shared_log() else {
                continue;
            };
            let done = object_compaction::compact_partition(
                &node.store,
                &mut db,
                self.node_id,
                shared.topic_id(),
                p.index,
                delay,
                max_bytes,
                MIN_BATCHES_TO_COMPACT,
            )
            .await;
            match done {
                Ok(Some(c)) => tracing::info!(
                    topic = %p.topic, partition = p.index, segment = %c.segment.0, batches = c.batches,
                    bytes = c.bytes, "batches compacted into a segment object"
                ),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "object compaction failed")
                }
            }
        }
    }
}
