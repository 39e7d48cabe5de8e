//! The batch index: where every batch of every partition lives, and the one database transaction that makes
//! an uploaded object's batches part of their partitions. That transaction is the commit point of a
//! produce in cluster mode: it locks the touched partitions in a fixed order (so brokers committing at once
//! never deadlock), checks idempotent producers' sequences as Kafka does, assigns each batch its offsets
//! from the partition's next offset and records it. Nothing is acknowledged before it commits, and a
//! failed commit leaves no row, so offsets are dense and never reused.

use std::collections::BTreeMap;

use runnel_storage::batch::BatchHeader;
use runnel_storage::log::ControlType;
use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use super::objects::ObjectKey;

/// How many recent batches per producer and partition are remembered for duplicate detection: Kafka's
/// limit on in-flight requests of an idempotent producer.
const PRODUCER_WINDOW: i64 = 5;

/// Partitions per notification: an entry is at most ~60 bytes, PostgreSQL's payload limit 8000.
const NOTIFY_ENTRIES: usize = 100;

/// One validated batch inside an uploaded object.
#[derive(Debug, Clone)]
pub struct Staged {
    pub topic_id: Uuid,
    pub partition: i32,
    pub header: BatchHeader,
    pub byte_offset: u64,
    pub byte_length: u32,
    /// For a control batch, which marker it is (transactions are settled by it).
    pub control: ControlType,
}

/// What the commit made of one staged batch, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Appended at this base offset.
    At(i64),
    /// A retry of a batch already in the log, at this base offset (answered as a success, as Kafka does).
    Duplicate(i64),
    /// OUT_OF_ORDER_SEQUENCE_NUMBER: a gap after the producer's last batch.
    OutOfOrder,
    /// INVALID_PRODUCER_EPOCH: an older epoch than the partition has seen from this producer.
    Fenced,
    /// UNKNOWN_TOPIC_OR_PARTITION.
    UnknownPartition,
}

/// A batch's place in object storage, as a fetch needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub object: ObjectKey,
    pub byte_offset: u64,
    pub byte_length: u32,
}

/// Creates partitions `0..count` of a topic (more later with a larger count).
pub async fn create_partitions(
    client: &impl GenericClient,
    topic_id: Uuid,
    count: i32,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO runnel_partitions (topic_id, partition)
             SELECT $1, p FROM generate_series(0, $2 - 1) AS p
             ON CONFLICT DO NOTHING",
            &[&topic_id, &count],
        )
        .await?;
    Ok(())
}

fn next_sequence(last: i32) -> i32 {
    last.wrapping_add(1) & i32::MAX
}

/// Records `object` and commits its batches; one result per batch, in order. An error means nothing
/// was committed (the object is then an orphan for the collector).
pub async fn commit(
    client: &mut Client,
    object: &ObjectKey,
    object_size: u64,
    uploaded_by: i32,
    batches: &[Staged],
) -> Result<Vec<Appended>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO runnel_objects (object_key, size_bytes, uploaded_by) VALUES ($1, $2, $3)",
        &[
            &object.0,
            &i64::try_from(object_size).unwrap_or(i64::MAX),
            &uploaded_by,
        ],
    )
    .await?;
    // Partitions in a fixed order, each locked once for the whole transaction.
    let mut by_partition: BTreeMap<(Uuid, i32), Vec<usize>> = BTreeMap::new();
    for (i, b) in batches.iter().enumerate() {
        by_partition
            .entry((b.topic_id, b.partition))
            .or_default()
            .push(i);
    }
    let mut results = vec![Appended::UnknownPartition; batches.len()];
    let mut advanced: Vec<String> = Vec::new();
    for ((topic_id, partition), indexes) in by_partition {
        let Some(row) = tx
            .query_opt(
                "SELECT next_offset FROM runnel_partitions
                 WHERE topic_id = $1 AND partition = $2 FOR UPDATE",
                &[&topic_id, &partition],
            )
            .await?
        else {
            continue;
        };
        let mut next: i64 = row.get(0);
        for i in indexes {
            let b = &batches[i];
            let h = &b.header;
            // Markers are written by the coordinator, outside the producer's sequence.
            let sequenced = h.has_producer_id() && !h.is_control();
            if sequenced {
                if let Some(verdict) = check_sequence(&tx, b).await? {
                    results[i] = verdict;
                    continue;
                }
            }
            let base = next;
            let last = base + i64::from(h.last_offset_delta);
            tx.execute(
                "INSERT INTO runnel_batches (topic_id, partition, base_offset, last_offset, object_key,
                     byte_offset, byte_length, max_timestamp, producer_id, producer_epoch, base_sequence,
                     is_transactional, is_control)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                &[
                    &topic_id,
                    &partition,
                    &base,
                    &last,
                    &object.0,
                    &i64::try_from(b.byte_offset).unwrap_or(i64::MAX),
                    &i32::try_from(b.byte_length).unwrap_or(i32::MAX),
                    &h.max_timestamp,
                    &h.producer_id,
                    &h.producer_epoch,
                    &h.base_sequence,
                    &h.is_transactional(),
                    &h.is_control(),
                ],
            )
            .await?;
            if sequenced {
                remember_producer_batch(&tx, b, base).await?;
            } else if h.has_producer_id() {
                remember_marker_epoch(&tx, b, base).await?;
            }
            track_transaction(&tx, b, base).await?;
            next = last + 1;
            results[i] = Appended::At(base);
        }
        tx.execute(
            "UPDATE runnel_partitions SET next_offset = $3 WHERE topic_id = $1 AND partition = $2",
            &[&topic_id, &partition, &next],
        )
        .await?;
        advanced.push(format!("{topic_id}:{partition}:{next}"));
    }
    // Delivered to every listening broker when (and only if) the transaction commits; a payload holds at
    // most 8000 bytes, so large rounds are told in parts.
    for part in advanced.chunks(NOTIFY_ENTRIES) {
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&super::append_watch::CHANNEL, &part.join(",")],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(results)
}

/// Keeps the open and aborted transactions of the partition up to date with one appended batch: a
/// transactional batch opens its producer's transaction (if not open), a marker closes it, and an ABORT
/// marker records the range read_committed readers skip.
async fn track_transaction(
    tx: &impl GenericClient,
    b: &Staged,
    base_offset: i64,
) -> Result<(), tokio_postgres::Error> {
    let h = &b.header;
    if !h.is_transactional() {
        return Ok(());
    }
    if !h.is_control() {
        tx.execute(
            "INSERT INTO runnel_txn_open (topic_id, partition, producer_id, first_offset)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&b.topic_id, &b.partition, &h.producer_id, &base_offset],
        )
        .await?;
        return Ok(());
    }
    let opened = tx
        .query_opt(
            "DELETE FROM runnel_txn_open WHERE topic_id = $1 AND partition = $2 AND producer_id = $3
             RETURNING first_offset",
            &[&b.topic_id, &b.partition, &h.producer_id],
        )
        .await?;
    if let (Some(row), ControlType::Abort) = (opened, b.control) {
        let first: i64 = row.get(0);
        tx.execute(
            "INSERT INTO runnel_txn_aborted (topic_id, partition, producer_id, first_offset, last_offset)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[&b.topic_id, &b.partition, &h.producer_id, &first, &base_offset],
        )
        .await?;
    }
    Ok(())
}

/// Kafka's checks for an idempotent batch against the producer's recent batches on the partition:
/// `None` when it may be appended, else what to answer instead.
async fn check_sequence(
    tx: &impl GenericClient,
    b: &Staged,
) -> Result<Option<Appended>, tokio_postgres::Error> {
    let h = &b.header;
    let recent = tx
        .query(
            "SELECT producer_epoch, base_sequence, last_sequence, base_offset FROM runnel_producer_batches
             WHERE producer_id = $1 AND topic_id = $2 AND partition = $3 ORDER BY base_offset DESC",
            &[&h.producer_id, &b.topic_id, &b.partition],
        )
        .await?;
    let Some(newest) = recent.first() else {
        // Nothing known of this producer here (new, or its state aged out): accept, as Kafka does.
        return Ok(None);
    };
    let epoch: i16 = newest.get(0);
    if h.producer_epoch < epoch {
        return Ok(Some(Appended::Fenced));
    }
    if h.producer_epoch > epoch {
        // A new epoch starts its sequences again.
        return Ok((h.base_sequence != 0).then_some(Appended::OutOfOrder));
    }
    if let Some(dup) = recent.iter().find(|r| {
        r.get::<_, i16>(0) == h.producer_epoch
            && r.get::<_, i32>(1) == h.base_sequence
            && r.get::<_, i32>(2) == h.last_sequence()
    }) {
        return Ok(Some(Appended::Duplicate(dup.get(3))));
    }
    let last: i32 = newest.get(2);
    Ok((h.base_sequence != next_sequence(last)).then_some(Appended::OutOfOrder))
}

async fn remember_producer_batch(
    tx: &impl GenericClient,
    b: &Staged,
    base_offset: i64,
) -> Result<(), tokio_postgres::Error> {
    let h = &b.header;
    tx.execute(
        "INSERT INTO runnel_producer_batches (producer_id, topic_id, partition, producer_epoch,
             base_sequence, last_sequence, base_offset)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &h.producer_id,
            &b.topic_id,
            &b.partition,
            &h.producer_epoch,
            &h.base_sequence,
            &h.last_sequence(),
            &base_offset,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM runnel_producer_batches
         WHERE producer_id = $1 AND topic_id = $2 AND partition = $3 AND base_offset NOT IN (
             SELECT base_offset FROM runnel_producer_batches
             WHERE producer_id = $1 AND topic_id = $2 AND partition = $3
             ORDER BY base_offset DESC LIMIT $4)",
        &[&h.producer_id, &b.topic_id, &b.partition, &PRODUCER_WINDOW],
    )
    .await?;
    Ok(())
}

/// A marker leaves Kafka's producer state on the partition at the marker's epoch even where the producer
/// has no batch of that epoch: its next batch there must then start at sequence 0 (a row with sequence -1
/// says so). Where a batch of the epoch is known, that batch still decides the next sequence.
async fn remember_marker_epoch(
    tx: &impl GenericClient,
    b: &Staged,
    base_offset: i64,
) -> Result<(), tokio_postgres::Error> {
    let h = &b.header;
    tx.execute(
        "INSERT INTO runnel_producer_batches (producer_id, topic_id, partition, producer_epoch,
             base_sequence, last_sequence, base_offset)
         SELECT $1, $2, $3, $4, -1, -1, $5
         WHERE NOT EXISTS (SELECT 1 FROM runnel_producer_batches
             WHERE producer_id = $1 AND topic_id = $2 AND partition = $3 AND producer_epoch >= $4)",
        &[
            &h.producer_id,
            &b.topic_id,
            &b.partition,
            &h.producer_epoch,
            &base_offset,
        ],
    )
    .await?;
    Ok(())
}

/// The partition's next offset (its high watermark), or None for an unknown partition.
pub async fn high_watermark(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
) -> Result<Option<i64>, tokio_postgres::Error> {
    Ok(client
        .query_opt(
            "SELECT next_offset FROM runnel_partitions WHERE topic_id = $1 AND partition = $2",
            &[&topic_id, &partition],
        )
        .await?
        .map(|r| r.get(0)))
}

/// The batches holding `offset` and after, in offset order, up to about `max_bytes` (at least one).
pub async fn batches_from(
    client: &impl GenericClient,
    topic_id: Uuid,
    partition: i32,
    offset: i64,
    max_bytes: u64,
) -> Result<Vec<IndexedBatch>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT base_offset, last_offset, object_key, byte_offset, byte_length FROM runnel_batches
             WHERE topic_id = $1 AND partition = $2 AND last_offset >= $3
             ORDER BY last_offset LIMIT 1000",
            &[&topic_id, &partition, &offset],
        )
        .await?;
    let mut out = Vec::new();
    let mut bytes = 0u64;
    for r in rows {
        let len: i32 = r.get(4);
        let len = u32::try_from(len).unwrap_or(0);
        if !out.is_empty() && bytes + u64::from(len) > max_bytes {
            break;
        }
        bytes += u64::from(len);
        out.push(IndexedBatch {
            base_offset: r.get(0),
            last_offset: r.get(1),
            object: ObjectKey(r.get(2)),
            byte_offset: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            byte_length: len,
        });
    }
    Ok(out)
}
