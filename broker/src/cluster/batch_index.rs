//! The batch index: where every batch of every partition lives, and the one database transaction that makes
//! an uploaded object's batches part of their partitions. That transaction is the commit point of a
//! produce in cluster mode: it locks the touched partitions in a fixed order (so brokers committing at once
//! never deadlock), checks idempotent producers' sequences as Kafka does, assigns each batch its offsets
//! from the partition's next offset and records it. Nothing is acknowledged before it commits, and a
//! failed commit leaves no row, so offsets are dense and never reused.

use runnel_storage::batch::BatchHeader;
use runnel_storage::log::ControlType;
use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use super::objects::ObjectKey;

/// How many recent batches per producer and partition are remembered for duplicate detection: Kafka's
/// limit on in-flight requests of an idempotent producer.
const PRODUCER_WINDOW: i32 = 5;

/// Partitions per notification: an entry is at most ~60 bytes, PostgreSQL's payload limit 8000.
const NOTIFY_ENTRIES: i32 = 100;

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

/// Records `object` and commits its batches; one result per batch, in order. An error means nothing
/// was committed (the object is then an orphan for the collector). The database does the work in one
/// call (`runnel_commit_round`, migration 0007), so the partitions' row locks are held for the function's
/// run rather than for a round trip per statement.
pub async fn commit(
    client: &mut Client,
    object: &ObjectKey,
    object_size: u64,
    uploaded_by: i32,
    batches: &[Staged],
) -> Result<Vec<Appended>, tokio_postgres::Error> {
    let c = Columns::of(batches);
    let rows = client
        .query(
            "SELECT verdict, base_offset FROM runnel_commit_round($1, $2, $3, $4, $5, $6, $7, $8, $9,
                 $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
            &[
                &object.0,
                &i64::try_from(object_size).unwrap_or(i64::MAX),
                &uploaded_by,
                &c.topic,
                &c.partition,
                &c.last_delta,
                &c.byte_offset,
                &c.byte_length,
                &c.max_timestamp,
                &c.producer_id,
                &c.epoch,
                &c.base_sequence,
                &c.last_sequence,
                &c.kind,
                &c.txn,
                &c.control,
                &super::append_watch::CHANNEL,
                &PRODUCER_WINDOW,
                &NOTIFY_ENTRIES,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| verdict(r.get(0), r.get(1)))
        .chain(std::iter::repeat(Appended::UnknownPartition))
        .take(batches.len())
        .collect())
}

fn verdict(code: i16, base_offset: i64) -> Appended {
    match code {
        0 => Appended::At(base_offset),
        1 => Appended::Duplicate(base_offset),
        2 => Appended::OutOfOrder,
        3 => Appended::Fenced,
        _ => Appended::UnknownPartition,
    }
}

/// A round's batches as the column arrays `runnel_commit_round` takes (its comment gives the codes).
#[derive(Default)]
struct Columns {
    topic: Vec<Uuid>,
    partition: Vec<i32>,
    last_delta: Vec<i32>,
    byte_offset: Vec<i64>,
    byte_length: Vec<i32>,
    max_timestamp: Vec<i64>,
    producer_id: Vec<i64>,
    epoch: Vec<i16>,
    base_sequence: Vec<i32>,
    last_sequence: Vec<i32>,
    kind: Vec<i16>,
    txn: Vec<i16>,
    control: Vec<bool>,
}

impl Columns {
    fn of(batches: &[Staged]) -> Self {
        let mut c = Columns::default();
        for b in batches {
            let h = &b.header;
            c.topic.push(b.topic_id);
            c.partition.push(b.partition);
            c.last_delta.push(h.last_offset_delta);
            c.byte_offset
                .push(i64::try_from(b.byte_offset).unwrap_or(i64::MAX));
            c.byte_length
                .push(i32::try_from(b.byte_length).unwrap_or(i32::MAX));
            c.max_timestamp.push(h.max_timestamp);
            c.producer_id.push(h.producer_id);
            c.epoch.push(h.producer_epoch);
            c.base_sequence.push(h.base_sequence);
            c.last_sequence.push(h.last_sequence());
            // Markers are written by the coordinator, outside the producer's sequence.
            c.kind.push(match (h.has_producer_id(), h.is_control()) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            });
            c.txn
                .push(match (h.is_transactional(), h.is_control(), b.control) {
                    (false, _, _) => 0,
                    (true, false, _) => 1,
                    (true, true, ControlType::Abort) => 3,
                    (true, true, _) => 2,
                });
            c.control.push(h.is_control());
        }
        c
    }
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
