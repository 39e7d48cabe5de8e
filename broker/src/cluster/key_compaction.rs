//! `cleanup.policy=compact` on the shared log: Kafka's log cleaner over a partition's segment objects (the
//! part of the log object compaction has already gathered, the shared log's closed segments). Of each key
//! only the newest record stays, tombstones only until `delete.retention.ms`; records keep their offsets
//! and timestamps (the batches are rebuilt as the local log's cleaner rebuilds them). Each segment that
//! loses records is written as a new segment object, and its rows are swapped for the new object's in one
//! transaction, only if they are still exactly the rows it was read from; the old object is left to the
//! unreferenced-object collector, so a fetch that had already looked up the old rows still reads them.

use std::collections::HashMap;

use bytes::Bytes;
use runnel_storage::batch::BatchHeader;
use tokio_postgres::Client;
use uuid::Uuid;

use super::object_compaction::{
    chunks_of, insert_chunks, CompactionError, Placed, TakenRow, CHUNK_BYTES, SEGMENT_PREFIX,
};
use super::objects::{ObjectKey, ObjectStorage};
use super::reader::batches_in;

/// What one pass over a partition did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeysCompacted {
    pub segments_rewritten: usize,
    pub records_removed: u64,
}

struct SegmentRows {
    object: ObjectKey,
    bases: Vec<i64>,
    batches: Vec<(BatchHeader, Bytes)>,
}

/// One cleaning pass over the partition's segment objects; tombstones older than `horizon_ms` go.
pub async fn compact_keys(
    store: &ObjectStorage,
    db: &mut Client,
    node_id: i32,
    topic_id: Uuid,
    partition: i32,
    horizon_ms: i64,
) -> Result<KeysCompacted, CompactionError> {
    let segments = read_segments(store, db, topic_id, partition).await?;
    let mut latest = HashMap::new();
    for s in &segments {
        runnel_storage::log::note_latest_keys(&s.batches, &mut latest)
            .map_err(|e| CompactionError::Corrupt(e.to_string()))?;
    }
    let mut done = KeysCompacted::default();
    for s in segments {
        let (kept, removed) = runnel_storage::log::retain_latest(&s.batches, &latest, horizon_ms)
            .map_err(|e| CompactionError::Corrupt(e.to_string()))?;
        if removed == 0 {
            continue;
        }
        if replace_segment(
            store,
            db,
            node_id,
            topic_id,
            partition,
            &s,
            Bytes::from(kept),
        )
        .await?
        {
            done.segments_rewritten += 1;
            done.records_removed += removed;
        }
    }
    Ok(done)
}

/// (count, highest base offset) of the partition's rows in segment objects: what a cleaning pass sees.
pub async fn segment_rows(
    db: &Client,
    topic_id: Uuid,
    partition: i32,
) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = db
        .query_one(
            "SELECT count(*), coalesce(max(base_offset), -1) FROM runnel_batches
             WHERE topic_id = $1 AND partition = $2 AND object_key LIKE $3",
            &[&topic_id, &partition, &format!("{SEGMENT_PREFIX}%")],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// The partition's rows in segment objects, grouped by object in offset order, with their batches.
async fn read_segments(
    store: &ObjectStorage,
    db: &Client,
    topic_id: Uuid,
    partition: i32,
) -> Result<Vec<SegmentRows>, CompactionError> {
    let rows = db
        .query(
            "SELECT b.object_key, b.base_offset, b.byte_offset, b.byte_length
             FROM runnel_batches b JOIN runnel_partitions p USING (topic_id, partition)
             WHERE b.topic_id = $1 AND b.partition = $2 AND b.object_key LIKE $3
               AND b.last_offset >= p.log_start
             ORDER BY b.base_offset",
            &[&topic_id, &partition, &format!("{SEGMENT_PREFIX}%")],
        )
        .await?;
    let mut segments: Vec<SegmentRows> = Vec::new();
    for r in rows {
        let object = ObjectKey(r.get(0));
        let start = u64::try_from(r.get::<_, i64>(2)).unwrap_or(0);
        let len = u64::try_from(r.get::<_, i32>(3)).unwrap_or(0);
        let bytes = store.get_range(&object, start..start + len).await?;
        let batches =
            batches_in(bytes, &object).map_err(|_| CompactionError::Short(object.0.clone()))?;
        match segments.last_mut() {
            Some(s) if s.object == object => {
                s.bases.push(r.get(1));
                s.batches.extend(batches);
            }
            _ => segments.push(SegmentRows {
                object,
                bases: vec![r.get(1)],
                batches,
            }),
        }
    }
    Ok(segments)
}

/// Uploads `kept` as the segment's successor and swaps the rows; false when the rows changed meanwhile
/// (retention, DeleteRecords, another pass), which leaves everything as it was.
async fn replace_segment(
    store: &ObjectStorage,
    db: &mut Client,
    node_id: i32,
    topic_id: Uuid,
    partition: i32,
    old: &SegmentRows,
    kept: Bytes,
) -> Result<bool, CompactionError> {
    let survivors = batches_in(kept.clone(), &old.object)
        .map_err(|_| CompactionError::Short(old.object.0.clone()))?;
    let mut placed = Vec::with_capacity(survivors.len());
    let mut taken = HashMap::with_capacity(survivors.len());
    let mut at = 0i64;
    for (h, b) in &survivors {
        placed.push(Placed {
            base_offset: h.base_offset,
            old_object: old.object.0.clone(),
            at,
            len: b.len() as i64,
        });
        taken.insert(
            h.base_offset,
            TakenRow {
                last_offset: h.base_offset + i64::from(h.last_offset_delta),
                max_timestamp: h.max_timestamp,
                is_control: h.is_control(),
            },
        );
        at += b.len() as i64;
    }
    let chunks = chunks_of(&placed, &taken, CHUNK_BYTES);
    let key = if kept.is_empty() {
        None
    } else {
        let first = placed.first().map_or(0, |p| p.base_offset);
        let name = format!("seg-{topic_id}-{partition}-{first:020}-{}", Uuid::new_v4());
        Some(store.put_named(&name, kept.clone()).await?)
    };
    let tx = db.transaction().await?;
    let deleted = tx
        .execute(
            "DELETE FROM runnel_batches
             WHERE topic_id = $1 AND partition = $2 AND object_key = $3 AND base_offset = ANY($4)",
            &[&topic_id, &partition, &old.object.0, &old.bases],
        )
        .await?;
    if deleted != old.bases.len() as u64 {
        // Changed since it was read: the upload is an orphan for the collector.
        tx.rollback().await?;
        return Ok(false);
    }
    if let Some(key) = &key {
        tx.execute(
            "INSERT INTO runnel_objects (object_key, size_bytes, uploaded_by) VALUES ($1, $2, $3)",
            &[&key.0, &(kept.len() as i64), &node_id],
        )
        .await?;
        insert_chunks(&tx, topic_id, partition, key, &chunks).await?;
    }
    tx.commit().await?;
    Ok(true)
}
