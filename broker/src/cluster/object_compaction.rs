//! Compaction of objects: a produce round's object holds the batches of every partition its broker wrote in
//! those milliseconds, so an old partition's data is scattered over many small objects, each kept alive by
//! every partition in it. Once a partition's batches are older than `diskless.compaction.delay.ms`, they
//! are copied, in offset order and with their offsets written into their headers (Kafka's segment format,
//! so the object can be read as a segment file), into one segment object of that partition
//! (`objects/seg-TOPIC-PARTITION-BASE-UUID`), and their rows are pointed at it in one transaction, each
//! only if it still names the object it was read from. The moved rows are merged, a row per run of about
//! [`CHUNK_BYTES`] of neighbouring batches, so the index of old data is bounded by its bytes, not by how
//! many batches producers sent. Reads of old data become one sequential range per segment; a round's
//! object is deleted by the unreferenced-object collector once every partition in it has moved out (or
//! been deleted).

use std::collections::HashMap;

use bytes::{Bytes, BytesMut};
use tokio_postgres::{Client, Transaction};
use uuid::Uuid;

use super::objects::{ObjectKey, ObjectStorage, ObjectStorageError};
use super::reader::patched;

/// Rows in round objects (not yet in a segment) are the candidates.
pub(super) const SEGMENT_PREFIX: &str = "objects/seg-";

/// A segment's batches are indexed by one row per run of about this many bytes: the index stays a row per
/// megabyte of old data however small the batches were, and a fetch from inside a run reads at most this
/// much more than it asked for (Kafka's default `max.partition.fetch.bytes` is the same 1 MiB).
pub(super) const CHUNK_BYTES: i64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error("metadata database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Store(#[from] ObjectStorageError),
    #[error("object {0} is shorter than its rows say")]
    Short(String),
    #[error("a batch cannot be read: {0}")]
    Corrupt(String),
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

/// A round row as the selection sees it.
struct Candidate {
    row: Row,
    last_offset: i64,
    /// Its object is older than the compaction delay.
    ripe: bool,
}

/// The partition's round rows looked at per pass, oldest first: the active tail, which compaction keeps short.
const CANDIDATE_ROWS: i64 = 20_000;

/// The rows one pass copies: from the oldest round row on, while each is ripe, starts right after the one
/// before, and the run stays within `max_bytes` (a larger first batch alone). The run must have no hole:
/// objects are dated by their commit's start, so with brokers committing at once a younger object can hold
/// earlier offsets than an older one, and a copy that skipped them would make one segment row span offsets
/// that another row still holds (a fetch then served them out of order).
fn oldest_run(candidates: impl Iterator<Item = Candidate>, max_bytes: i64) -> Vec<Row> {
    let mut run: Vec<Row> = Vec::new();
    let mut bytes = 0i64;
    let mut next: Option<i64> = None;
    for c in candidates {
        let len = i64::from(c.row.byte_length);
        let joins = next.is_none_or(|n| c.row.base_offset == n);
        if !c.ripe || !joins || (!run.is_empty() && bytes + len > max_bytes) {
            break;
        }
        bytes += len;
        next = Some(c.last_offset + 1);
        run.push(c.row);
    }
    run
}

/// Copies up to `max_bytes` of the partition's oldest batches still in round objects (older than `delay_ms`,
/// offsets without a hole) into one segment object; None when fewer than `min_batches` qualify.
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
    let candidates = db
        .query(
            "SELECT b.base_offset, b.last_offset, b.object_key, b.byte_offset, b.byte_length,
                    o.created_at < now() - $4::bigint * interval '1 millisecond' AS ripe
             FROM runnel_batches b JOIN runnel_objects o USING (object_key)
             WHERE b.topic_id = $1 AND b.partition = $2 AND b.object_key NOT LIKE $3
             ORDER BY b.base_offset LIMIT $5",
            &[
                &topic_id,
                &partition,
                &format!("{SEGMENT_PREFIX}%"),
                &delay_ms,
                &CANDIDATE_ROWS,
            ],
        )
        .await?;
    let rows = oldest_run(
        candidates.iter().map(|r| Candidate {
            row: Row {
                base_offset: r.get(0),
                object: r.get(2),
                byte_offset: r.get(3),
                byte_length: r.get(4),
            },
            last_offset: r.get(1),
            ripe: r.get(5),
        }),
        max_bytes,
    );
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
            placed.push(Placed {
                base_offset: r.base_offset,
                old_object: r.object.clone(),
                at: segment.len() as i64,
                len: raw.len() as i64,
            });
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
    let (bases, olds): (Vec<i64>, Vec<String>) = placed
        .iter()
        .map(|p| (p.base_offset, p.old_object.clone()))
        .unzip();
    // The rows copied, each only if it still names the object it was read from: a row deleted or moved
    // meanwhile (DeleteRecords, retention) is left as it is, and its batch's copy is never named.
    let taken: HashMap<i64, TakenRow> = tx
        .query(
            "DELETE FROM runnel_batches b
             USING unnest($3::bigint[], $4::text[]) AS m(base_offset, old_key)
             WHERE b.topic_id = $1 AND b.partition = $2 AND b.base_offset = m.base_offset
               AND b.object_key = m.old_key
             RETURNING b.base_offset, b.last_offset, b.max_timestamp, b.is_control",
            &[&topic_id, &partition, &bases, &olds],
        )
        .await?
        .iter()
        .map(|r| {
            (
                r.get(0),
                TakenRow {
                    last_offset: r.get(1),
                    max_timestamp: r.get(2),
                    is_control: r.get(3),
                },
            )
        })
        .collect();
    let chunks = chunks_of(&placed, &taken, CHUNK_BYTES);
    let moved: usize = chunks.iter().map(|c| c.batches).sum();
    insert_chunks(&tx, topic_id, partition, &key, &chunks).await?;
    tx.commit().await?;
    Ok(Some(Compacted {
        segment: key,
        batches: moved,
        bytes: size,
    }))
}

/// A batch as copied into the segment: where it came from, where it is now.
pub(super) struct Placed {
    pub base_offset: i64,
    pub old_object: String,
    pub at: i64,
    pub len: i64,
}

/// What a copied row said that its run's row must keep.
pub(super) struct TakenRow {
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub is_control: bool,
}

/// One row of the segment's index: neighbouring batches, byte range in the segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Chunk {
    base_offset: i64,
    last_offset: i64,
    byte_offset: i64,
    byte_length: i64,
    /// Over the data batches only (-1 when all are control batches), so timestamp lookups never land on
    /// a transaction marker.
    max_timestamp: i64,
    all_control: bool,
    pub batches: usize,
}

/// Runs of batches whose rows were taken, in segment order, each up to `max_bytes` (a larger batch alone);
/// a batch whose row was not taken ends the run before it and is left out.
pub(super) fn chunks_of(
    placed: &[Placed],
    taken: &HashMap<i64, TakenRow>,
    max_bytes: i64,
) -> Vec<Chunk> {
    let mut chunks: Vec<Chunk> = Vec::new();
    let mut open = false;
    for p in placed {
        let Some(row) = taken.get(&p.base_offset) else {
            open = false;
            continue;
        };
        let len = p.len;
        let data_ts = if row.is_control {
            -1
        } else {
            row.max_timestamp
        };
        match chunks.last_mut() {
            Some(c) if open && c.byte_length + len <= max_bytes => {
                c.last_offset = row.last_offset;
                c.byte_length += len;
                c.max_timestamp = c.max_timestamp.max(data_ts);
                c.all_control &= row.is_control;
                c.batches += 1;
            }
            _ => chunks.push(Chunk {
                base_offset: p.base_offset,
                last_offset: row.last_offset,
                byte_offset: p.at,
                byte_length: len,
                max_timestamp: data_ts,
                all_control: row.is_control,
                batches: 1,
            }),
        }
        open = true;
    }
    chunks
}

pub(super) async fn insert_chunks(
    tx: &Transaction<'_>,
    topic_id: Uuid,
    partition: i32,
    segment: &ObjectKey,
    chunks: &[Chunk],
) -> Result<(), tokio_postgres::Error> {
    let column = |f: fn(&Chunk) -> i64| chunks.iter().map(f).collect::<Vec<i64>>();
    let control: Vec<bool> = chunks.iter().map(|c| c.all_control).collect();
    // A run's row keeps no producer: the producers' state is in runnel_producer_batches, and a run may
    // hold many producers' batches.
    tx.execute(
        "INSERT INTO runnel_batches (topic_id, partition, base_offset, last_offset, object_key, byte_offset,
             byte_length, max_timestamp, producer_id, producer_epoch, base_sequence, is_transactional,
             is_control)
         SELECT $1, $2, c.base_offset, c.last_offset, $3, c.byte_offset, c.byte_length::integer,
                c.max_timestamp, -1, -1, -1, false, c.is_control
         FROM unnest($4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::boolean[])
             AS c(base_offset, last_offset, byte_offset, byte_length, max_timestamp, is_control)",
        &[
            &topic_id,
            &partition,
            &segment.0,
            &column(|c| c.base_offset),
            &column(|c| c.last_offset),
            &column(|c| c.byte_offset),
            &column(|c| c.byte_length),
            &column(|c| c.max_timestamp),
            &control,
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(lens: &[i64]) -> Vec<Placed> {
        let mut at = 0;
        lens.iter()
            .enumerate()
            .map(|(i, &len)| {
                let p = Placed {
                    base_offset: i as i64 * 10,
                    old_object: "o".into(),
                    at,
                    len,
                };
                at += len;
                p
            })
            .collect()
    }

    fn taken(bases: &[i64], control: &[i64]) -> HashMap<i64, TakenRow> {
        bases
            .iter()
            .map(|&b| {
                (
                    b,
                    TakenRow {
                        last_offset: b + 9,
                        max_timestamp: 1000 + b,
                        is_control: control.contains(&b),
                    },
                )
            })
            .collect()
    }

    fn candidate(base: i64, last: i64, len: i32, ripe: bool) -> Candidate {
        Candidate {
            row: Row {
                base_offset: base,
                object: format!("o{base}"),
                byte_offset: 0,
                byte_length: len,
            },
            last_offset: last,
            ripe,
        }
    }

    fn bases(rows: &[Row]) -> Vec<i64> {
        rows.iter().map(|r| r.base_offset).collect()
    }

    #[test]
    fn a_pass_copies_the_oldest_ripe_rows_without_a_hole() {
        // Offsets 5..=9 sit in an object younger than the later rows' (committed at once by two brokers):
        // the pass stops before them, rather than copying 0..=4 and 10..=14 into one row around them.
        let rows = oldest_run(
            [
                candidate(0, 4, 100, true),
                candidate(5, 9, 100, false),
                candidate(10, 14, 100, true),
            ]
            .into_iter(),
            1 << 20,
        );
        assert_eq!(bases(&rows), vec![0]);
        // A hole in the offsets themselves (rows of a range not in this selection) ends the run too.
        let rows = oldest_run(
            [candidate(0, 4, 100, true), candidate(7, 9, 100, true)].into_iter(),
            1 << 20,
        );
        assert_eq!(bases(&rows), vec![0]);
    }

    #[test]
    fn a_pass_stays_within_its_byte_bound_but_takes_one_large_batch() {
        let rows = oldest_run(
            (0..5).map(|i| candidate(i * 10, i * 10 + 9, 400, true)),
            1000,
        );
        assert_eq!(bases(&rows), vec![0, 10]);
        let rows = oldest_run(
            [candidate(0, 9, 5000, true), candidate(10, 19, 10, true)].into_iter(),
            1000,
        );
        assert_eq!(bases(&rows), vec![0]);
        assert!(oldest_run([candidate(0, 9, 10, false)].into_iter(), 1000).is_empty());
    }

    #[test]
    fn neighbouring_batches_share_a_row_up_to_the_byte_bound() {
        let p = placed(&[400, 400, 400, 2000, 100]);
        let chunks = chunks_of(&p, &taken(&[0, 10, 20, 30, 40], &[]), 1000);
        let spans: Vec<(i64, i64, i64, i64, usize)> = chunks
            .iter()
            .map(|c| {
                (
                    c.base_offset,
                    c.last_offset,
                    c.byte_offset,
                    c.byte_length,
                    c.batches,
                )
            })
            .collect();
        // 400+400 fit, the third starts a new run; a batch over the bound stands alone.
        assert_eq!(
            spans,
            vec![
                (0, 19, 0, 800, 2),
                (20, 29, 800, 400, 1),
                (30, 39, 1200, 2000, 1),
                (40, 49, 3200, 100, 1)
            ]
        );
    }

    #[test]
    fn a_row_not_taken_splits_the_run_and_is_left_out() {
        let p = placed(&[10, 10, 10, 10]);
        let chunks = chunks_of(&p, &taken(&[0, 10, 30], &[]), 1000);
        let spans: Vec<(i64, i64, i64)> = chunks
            .iter()
            .map(|c| (c.base_offset, c.last_offset, c.byte_length))
            .collect();
        assert_eq!(spans, vec![(0, 19, 20), (30, 39, 10)]);
    }

    #[test]
    fn markers_do_not_count_towards_the_timestamp_and_mark_only_all_control_runs() {
        let p = placed(&[10, 10, 10]);
        let mixed = chunks_of(&p, &taken(&[0, 10, 20], &[20]), 1000);
        assert_eq!(mixed[0].max_timestamp, 1010);
        assert!(!mixed[0].all_control);
        let markers = chunks_of(&p, &taken(&[0, 10, 20], &[0, 10, 20]), 1000);
        assert_eq!(markers[0].max_timestamp, -1);
        assert!(markers[0].all_control);
    }
}
