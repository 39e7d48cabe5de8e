//! Retention on the shared log, and deleting what no one reads any more. Retention cuts a prefix of a
//! partition as Kafka's does (by `retention.ms` against each batch's max timestamp, and by `retention.bytes`
//! counted from the newest batch), through the same transaction as DeleteRecords; objects that no batch row
//! names once retention, DeleteRecords or a topic deletion removed theirs are then deleted, their rows first
//! (an object whose delete fails is an orphan for `orphans::collect`). An object goes only once it has been
//! unreferenced for a grace period, so a fetch that looked its rows up just before can still read it.

use std::time::Duration;

use runnel_storage::config::LogConfig;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use super::objects::{ObjectKey, ObjectStorage};
use super::orphans::OrphanError;

/// The first offset a partition keeps under its retention settings, when that is past its log start.
pub async fn cut(
    db: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    config: &LogConfig,
    now_ms: i64,
) -> Result<Option<i64>, tokio_postgres::Error> {
    if !config.delete || (config.retention_ms < 0 && config.retention_bytes < 0) {
        return Ok(None);
    }
    let Some(row) = db
        .query_opt(
            "SELECT log_start, next_offset FROM runnel_partitions WHERE topic_id = $1 AND partition = $2",
            &[&topic_id, &partition],
        )
        .await?
    else {
        return Ok(None);
    };
    let (start, next): (i64, i64) = (row.get(0), row.get(1));
    let mut keep_from = start;
    if config.retention_ms >= 0 {
        let cutoff = now_ms.saturating_sub(config.retention_ms);
        let first_young: Option<i64> = db
            .query_one(
                "SELECT min(base_offset) FROM runnel_batches
                 WHERE topic_id = $1 AND partition = $2 AND max_timestamp >= $3",
                &[&topic_id, &partition, &cutoff],
            )
            .await?
            .get(0);
        keep_from = keep_from.max(first_young.unwrap_or(next));
    }
    if config.retention_bytes >= 0 {
        let over: Option<i64> = db
            .query_opt(
                "SELECT last_offset FROM (
                     SELECT last_offset,
                            sum(byte_length) OVER (ORDER BY base_offset DESC) AS kept
                     FROM runnel_batches WHERE topic_id = $1 AND partition = $2) newest_first
                 WHERE kept > $3 ORDER BY last_offset DESC LIMIT 1",
                &[&topic_id, &partition, &config.retention_bytes],
            )
            .await?
            .map(|r| r.get(0));
        if let Some(last) = over {
            keep_from = keep_from.max(last + 1);
        }
    }
    Ok((keep_from > start).then_some(keep_from))
}

/// Deletes the objects no batch has named for `grace`; returns how many.
pub async fn collect_unreferenced(
    store: &ObjectStorage,
    db: &impl GenericClient,
    grace: Duration,
) -> Result<usize, OrphanError> {
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    // Rows are marked first and deleted a grace period later, so an object unreferenced just now is kept
    // for readers that found it a moment ago.
    db.execute(
        "UPDATE runnel_objects o SET unreferenced_since = now()
         WHERE unreferenced_since IS NULL
           AND NOT EXISTS (SELECT 1 FROM runnel_batches b WHERE b.object_key = o.object_key)",
        &[],
    )
    .await?;
    let gone: Vec<String> = db
        .query(
            "DELETE FROM runnel_objects o
             WHERE unreferenced_since < now() - $1::bigint * interval '1 millisecond'
               AND NOT EXISTS (SELECT 1 FROM runnel_batches b WHERE b.object_key = o.object_key)
             RETURNING object_key",
            &[&grace_ms],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for key in &gone {
        store.delete(&ObjectKey(key.clone())).await?;
    }
    if !gone.is_empty() {
        tracing::info!(
            deleted = gone.len(),
            "objects no batch names any more deleted"
        );
    }
    Ok(gone.len())
}
