//! Cluster mode's housekeeping, done by the one broker the placement names for it (any broker could; one
//! avoids doing the work three times): retention of every shared partition, then the compaction of its old
//! batches into segment objects, then the cleaning of compacted topics' segments (newest record per key),
//! then the objects no batch names any more, then uploads that were never committed.

use crate::broker::Broker;
use crate::cluster::node::KeyPass;
use crate::cluster::{key_compaction, object_compaction, orphans, retention};

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
        self.compact_keys(node, now).await;
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

    /// Cleans every `cleanup.policy=compact` partition whose segments changed since its last pass (or whose
    /// tombstones may have aged out since).
    async fn compact_keys(&self, node: &crate::cluster::ClusterNode, now_ms: i64) {
        let mut db = match crate::cluster::connect(node.db.url()).await {
            Ok(db) => db,
            Err(e) => {
                tracing::warn!(error = %e, "key compaction skipped: no metadata database");
                return;
            }
        };
        for p in self.every_partition() {
            let Some(shared) = p.shared_log() else {
                continue;
            };
            let config = shared.config();
            if !config.compact {
                continue;
            }
            let id = (shared.topic_id(), p.index);
            let rows = match key_compaction::segment_rows(&db, id.0, id.1).await {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "key compaction failed");
                    continue;
                }
            };
            let retention = std::time::Duration::from_millis(
                u64::try_from(config.delete_retention_ms).unwrap_or(0),
            );
            let last = node
                .key_passes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&id)
                .copied();
            if last.is_some_and(|l| l.rows == rows && l.at.elapsed() < retention) {
                continue;
            }
            let horizon = now_ms.saturating_sub(config.delete_retention_ms);
            let done = key_compaction::compact_keys(
                &node.store,
                &mut db,
                self.node_id,
                id.0,
                id.1,
                horizon,
            )
            .await;
            match done {
                Ok(done) => {
                    if done.segments_rewritten > 0 {
                        tracing::info!(
                            topic = %p.topic, partition = p.index, segments = done.segments_rewritten,
                            records_removed = done.records_removed, "compacted topic cleaned"
                        );
                    }
                    // What the pass left (its own rewrite changes the rows: the next pass sees no change).
                    let rows = key_compaction::segment_rows(&db, id.0, id.1)
                        .await
                        .unwrap_or(rows);
                    let pass = KeyPass {
                        rows,
                        at: std::time::Instant::now(),
                    };
                    node.key_passes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id, pass);
                }
                Err(e) => {
                    tracing::warn!(topic = %p.topic, partition = p.index, error = %e, "key compaction failed")
                }
            }
        }
    }
}
