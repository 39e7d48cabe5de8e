//! Compaction of objects: a produce round's object holds the batches of every partition its broker wrote in
//! those milliseconds, so an old partition's data is scattered over many small objects, each kept alive by
//! every partition in it. Once a partition's batches are older than `diskless.compaction.delay.ms`, they
//! are copied, in offset order and with their offsets written into their headers (Kafka's segment format,
//! so the object can be read as a segment file), into one segment object of that partition
//! (`objects/seg-TOPIC-PARTITION-BASE-UUID`), and their rows are pointed at it in one transaction, each
//! only if it still names the object it was read from. Reads of old data become one sequential range per
//! segment; a round's object is deleted by the unreferenced-object collector once every partition in it
//! has moved out (or been deleted).

use bytes::{Bytes, BytesMut};
use tokio_postgres::Client;
use uuid::Uuid;

use super::objects::{ObjectKey, ObjectStorage, ObjectStorageError};
use super::reader::patched;

/// Rows in round objects (not yet in a segment) are the candidates.
const SEGMENT_PREFIX: &str = "objects/seg-";

#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error("metadata database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Store(#[from] ObjectStorageError),
    #[error("object {0} is shorter than its rows say")]
    Short(String),
}

/// What one compaction of a partition did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compacted {
    pub segment: ObjectKey,
    pub batches: usize,
    pub bytes: usize,
}

struct Row {
    base_offset: i64,
    object: String,
    byte_offset: i64,
    byte_length: i32,
}

/// Copies up to `max_bytes` of the partition's oldest batches still in round objects (older than `delay_ms`)
/// into one segment object; None when fewer than `min_batches` qualify.
#[allow(clippy::too_many_arguments)]
pub async fn compact_partition(
    store: &ObjectStorage,
    db: &mut Client,
    node_id: i32,
    topic_id: Uuid,
    partition: i32,
    delay_ms: i64,
    max_bytes: i64,
    min_batches: usize,
) -> Result<Option<Compacted>, CompactionError> {
    let rows: Vec<Row> = db
        .query(
            "SELECT b.base_offset, b.object_key, b.byte_offset, b.byte_length,
                    sum(b.byte_length) OVER (ORDER BY b.base_offset) AS upto
             FROM runnel_batches b JOIN runnel_objects o USING (object_key)
             WHERE b.topic_id = $1 AND b.partition = $2 AND b.object_key NOT LIKE $3
               AND o.created_at < now() - $4::bigint * interval '1 millisecond'
             ORDER BY b.base_offset",
            &[
                &topic_id,
                &partition,
                &format!("{SEGMENT_PREFIX}%"),
                &delay_ms,
            ],
        )
        .await?
        .iter()
        .take_while(|r| r.get::<_, i64>(4) <= max_bytes.max(i64::from(r.get::<_, i32>(3))))
        .map(|r| Row {
            base_offset: r.get(0),
            object: r.get(1),
            byte_offset: r.get(2),
            byte_length: r.get(3),
        })
        .collect();
    if rows.len() < min_batches.max(1) {
        return Ok(None);
    }
    let mut segment = BytesMut::new();
    let mut placed = Vec::with_capacity(rows.len());
    // Neighbouring batches of one object come in one ranged GET.
    let mut i = 0;
    while i < rows.len() {
        let mut j = i + 1;
        while j < rows.len()
            && rows[j].object == rows[i].object
            && rows[j].byte_offset == rows[j - 1].byte_offset + i64::from(rows[j - 1].byte_length)
        {
            j += 1;
        }
        let start = u64::try_from(rows[i].byte_offset).unwrap_or(0);
        let last = &rows[j - 1];
        let end = u64::try_from(last.byte_offset + i64::from(last.byte_length)).unwrap_or(0);
        let key = ObjectKey(rows[i].object.clone());
        let bytes: Bytes = store.get_range(&key, start..end).await?;
        for r in &rows[i..j] {
            let from = usize::try_from(u64::try_from(r.byte_offset).unwrap_or(0) - start)
                .unwrap_or(usize::MAX);
            let to = from.saturating_add(usize::try_from(r.byte_length).unwrap_or(0));
            let raw = bytes
                .get(from..to)
                .ok_or_else(|| CompactionError::Short(r.object.clone()))?;
            placed.push((r.base_offset, r.object.clone(), segment.len() as i64));
            segment.extend_from_slice(&patched(raw, r.base_offset));
        }
        i = j;
    }
    let size = segment.len();
    let name = format!(
        "seg-{topic_id}-{partition}-{:020}-{}",
        rows[0].base_offset,
        Uuid::new_v4()
    );
    let key = store.put_named(&name, segment.freeze()).await?;
    let tx = db.transaction().await?;
    tx.execute(
        "INSERT INTO runnel_objects (object_key, size_bytes, uploaded_by) VALUES ($1, $2, $3)",
        &[&key.0, &(size as i64), &node_id],
    )
    .await?;
    let (bases, olds, offsets): (Vec<i64>, Vec<String>, Vec<i64>) = placed.into_iter().fold(
        (Vec::new(), Vec::new(), Vec::new()),
        |(mut b, mut o, mut f), (base, old, at)| {
            b.push(base);
            o.push(old);
            f.push(at);
            (b, o, f)
        },
    );
    // A row deleted or moved meanwhile (DeleteRecords, retention) is left as it is.
    let moved = tx
        .execute(
            "UPDATE runnel_batches b SET object_key = $3, byte_offset = m.byte_offset
             FROM unnest($4::bigint[], $5::text[], $6::bigint[]) AS m(base_offset, old_key, byte_offset)
             WHERE b.topic_id = $1 AND b.partition = $2 AND b.base_offset = m.base_offset
               AND b.object_key = m.old_key",
            &[&topic_id, &partition, &key.0, &bases, &olds, &offsets],
        )
        .await?;
    tx.commit().await?;
    Ok(Some(Compacted {
        segment: key,
        batches: usize::try_from(moved).unwrap_or(0),
        bytes: size,
    }))
}
