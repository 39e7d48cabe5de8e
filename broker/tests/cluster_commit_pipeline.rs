//! The cluster produce path end to end below the protocol: three brokers' commit pipelines take batches from
//! six idempotent producers at once for twelve partitions, each answered only once committed; object storage
//! killed and restarted, then the database, each give errors to the producers while down and then recovery;
//! afterwards a reader finds every acknowledged batch exactly once, each producer's batches in order, and
//! dense offsets.

// Test harness code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use runnel_broker::cluster::batch_index::{self, Appended};
use runnel_broker::cluster::commit_pipeline::{CommitError, CommitPipeline, RoundLimits};
use runnel_broker::cluster::reader::ReadCache;
use runnel_broker::cluster::{connect, migrate};
use runnel_storage::batch::BatchHeader;
use uuid::Uuid;

const PARTITIONS: i32 = 12;

fn batch(producer: i64, sequence: i32, records: usize) -> Bytes {
    let values: Vec<String> = (0..records)
        .map(|i| format!("p{producer}-s{}", sequence + i as i32))
        .collect();
    engines::batch_of(&values, 1_700_000_000_000, Some((producer, 0, sequence)))
}

/// One producer: sends `rounds` batches to every partition through `pipeline`, retrying a batch that
/// failed (as a Kafka producer retries a retriable error) until it is acknowledged; returns each
/// acknowledged batch as (producer, partition, base sequence).
async fn produce(
    pipeline: CommitPipeline,
    topic: Uuid,
    producer: i64,
    rounds: i32,
    errors: Arc<std::sync::Mutex<Vec<CommitError>>>,
) -> Vec<(i64, i32, i32)> {
    let mut acked = Vec::new();
    let mut sequences = vec![0i32; PARTITIONS as usize];
    for _ in 0..rounds {
        for p in 0..PARTITIONS {
            let seq = sequences[p as usize];
            let records = 1 + (seq as usize % 3);
            let bytes = batch(producer, seq, records);
            let header = BatchHeader::parse(&bytes).expect("header");
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                match pipeline.append(topic, p, bytes.clone(), header).await {
                    Ok(Appended::At(_) | Appended::Duplicate(_)) => break,
                    Ok(other) => panic!("producer {producer} p{p} s{seq}: {other:?}"),
                    Err(e) => {
                        assert!(Instant::now() < deadline, "never recovered: {e}");
                        errors.lock().unwrap().push(e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            acked.push((producer, p, seq));
            sequences[p as usize] = seq + records as i32;
        }
    }
    acked
}

/// Until a producer has seen an error `is` accepts, for at most a minute.
async fn wait_for_error(
    errors: &std::sync::Mutex<Vec<CommitError>>,
    is: impl Fn(&CommitError) -> bool,
    what: &str,
) {
    let waited = Instant::now();
    while !errors.lock().unwrap().iter().any(&is) {
        assert!(waited.elapsed() < Duration::from_secs(60), "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_batches_survive_store_and_database_outages_exactly_once_and_in_order() {
    let pg = engines::Postgres::start();
    let mut s3 = engines::SeaweedFs::start();
    let store = Arc::new(s3.store("pipeline").await);
    let mut admin = connect(&pg.url).await.expect("connect");
    migrate(&mut admin).await.expect("migrate");
    let topic = Uuid::new_v4();
    batch_index::create_partitions(&admin, topic, PARTITIONS)
        .await
        .expect("partitions");

    let limits = RoundLimits {
        interval: Duration::from_millis(10),
        ..RoundLimits::default()
    };
    let pipelines: Vec<CommitPipeline> = (0..3)
        .map(|node| {
            CommitPipeline::start(
                store.clone(),
                pg.url.clone(),
                node,
                limits,
                Arc::new(ReadCache::new(1 << 20)),
            )
        })
        .collect();
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut producers = tokio::task::JoinSet::new();
    for id in 0..6i64 {
        let pipeline = pipelines[(id % 3) as usize].clone();
        producers.spawn(produce(pipeline, topic, 100 + id, 25, errors.clone()));
    }

    // Object storage dies and comes back, then the database does: producers see errors, then go on.
    let hw = |admin: tokio_postgres::Client| async move {
        let mut total = 0;
        for p in 0..PARTITIONS {
            total += batch_index::high_watermark(&admin, topic, p)
                .await
                .expect("hw")
                .unwrap_or(0);
        }
        (admin, total)
    };
    let (admin, before) = hw(admin).await;
    assert!(before < 6 * 25 * 24, "the producers are not done yet");
    s3.stop();
    wait_for_error(
        &errors,
        |e| matches!(e, CommitError::Upload(_)),
        "no upload error while S3 is down",
    )
    .await;
    s3.restart();
    pg.stop();
    wait_for_error(
        &errors,
        |e| matches!(e, CommitError::Commit(_)),
        "no commit error while the database is down",
    )
    .await;
    pg.restart();

    let mut acked: HashSet<(i64, i32, i32)> = HashSet::new();
    while let Some(done) = producers.join_next().await {
        acked.extend(done.expect("producer"));
    }
    drop(admin);

    // Read every partition back: dense offsets, each producer's batches in sequence order, none twice.
    let admin = connect(&pg.url).await.expect("connect after the restart");
    let mut per_producer: BTreeMap<(i64, i32), Vec<i32>> = BTreeMap::new();
    let mut in_log = HashSet::new();
    let mut batches = 0;
    for p in 0..PARTITIONS {
        let end = batch_index::high_watermark(&admin, topic, p)
            .await
            .expect("hw")
            .expect("partition");
        let mut offset = 0;
        while offset < end {
            let found = batch_index::batches_from(&admin, topic, p, offset, 1 << 20)
                .await
                .expect("index");
            assert!(!found.is_empty(), "a hole at {offset} in partition {p}");
            for f in found {
                assert_eq!(f.base_offset, offset, "partition {p}: dense offsets");
                let bytes = store
                    .get_range(
                        &f.object,
                        f.byte_offset..f.byte_offset + u64::from(f.byte_length),
                    )
                    .await
                    .expect("range");
                let h = BatchHeader::parse(&bytes).expect("header");
                per_producer
                    .entry((h.producer_id, p))
                    .or_default()
                    .push(h.base_sequence);
                in_log.insert((h.producer_id, p, h.base_sequence));
                batches += 1;
                offset = f.last_offset + 1;
            }
        }
    }
    assert_eq!(acked.len(), 6 * 25 * PARTITIONS as usize);
    assert_eq!(
        in_log, acked,
        "the log holds exactly the acknowledged batches"
    );
    assert_eq!(batches, acked.len(), "none of them twice");
    for ((producer, p), seqs) in &per_producer {
        let mut sorted = seqs.clone();
        sorted.sort();
        assert_eq!(
            &sorted, seqs,
            "producer {producer} partition {p}: in sequence order"
        );
    }
}
