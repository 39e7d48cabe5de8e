//! Fetching in cluster mode against real engines: batches committed by one broker are read by another
//! through the batch index and object storage with their offsets patched in, from any offset; repeated reads
//! and the writer's own reads come from the bounded cache, which stays within its budget.

// Test harness code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use std::sync::Arc;

use bytes::Bytes;
use runnel_broker::cluster::batch_index::{self, Appended};
use runnel_broker::cluster::commit_pipeline::{CommitPipeline, RoundLimits};
use runnel_broker::cluster::reader::{PartitionReader, ReadCache};
use runnel_broker::cluster::{connect, migrate};
use runnel_storage::batch::BatchHeader;
use uuid::Uuid;

fn batch(n: usize, records: usize) -> Bytes {
    let values: Vec<String> = (0..records)
        .map(|i| format!("batch {n} record {i}"))
        .collect();
    engines::batch_of(&values, 1_700_000_000_000 + n as i64, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_broker_reads_committed_batches_with_their_offsets_and_the_cache_stays_bounded() {
    let pg = engines::Postgres::start();
    let s3 = engines::SeaweedFs::start();
    let store = Arc::new(s3.store("reads").await);
    let mut db = connect(&pg.url).await.expect("connect");
    migrate(&mut db).await.expect("migrate");
    let topic = Uuid::new_v4();
    batch_index::create_partitions(&db, topic, 1)
        .await
        .expect("partitions");

    let writer_cache = Arc::new(ReadCache::new(64 << 20));
    let pipeline = CommitPipeline::start(
        store.clone(),
        pg.url.clone(),
        0,
        RoundLimits::default(),
        writer_cache.clone(),
    );
    // Several batches per round (one object), so reads cross object boundaries and runs within objects.
    let mut sent = Vec::new();
    for wave in 0..6 {
        let mut acks = tokio::task::JoinSet::new();
        for k in 0..5 {
            let n = wave * 5 + k;
            let bytes = batch(n, 1 + n % 4);
            let header = BatchHeader::parse(&bytes).expect("header");
            let p = pipeline.clone();
            let b = bytes.clone();
            acks.spawn(async move { (p.append(topic, 0, b, header).await, bytes) });
        }
        while let Some(done) = acks.join_next().await {
            let (ack, bytes) = done.expect("task");
            let Ok(Appended::At(base)) = ack else {
                panic!("{ack:?}")
            };
            sent.push((base, bytes));
        }
    }
    sent.sort_by_key(|(base, _)| *base);
    let end = batch_index::high_watermark(&db, topic, 0)
        .await
        .expect("hw")
        .expect("partition");

    // Another broker, cold cache: everything, in order, each header carrying its offsets.
    let cache = Arc::new(ReadCache::new(64 << 20));
    let reader = PartitionReader::new(store.clone(), cache.clone());
    let all = reader.read(&db, topic, 0, 0, 1 << 30).await.expect("read");
    assert_eq!(all.len(), sent.len());
    for ((base, original), served) in sent.iter().zip(&all) {
        let h = BatchHeader::parse(served).expect("header");
        assert_eq!(h.base_offset, *base, "the offset is patched in");
        assert_eq!(
            &served[8..],
            &original[8..],
            "nothing else changed (the CRC still holds)"
        );
        runnel_storage::batch::validate(served).expect("a valid batch");
    }
    assert_eq!(
        BatchHeader::parse(all.last().unwrap())
            .unwrap()
            .next_offset(),
        end
    );
    let (hits, misses) = cache.counts();
    assert_eq!((hits, misses), (0, sent.len() as u64), "a cold read misses");
    let again = reader.read(&db, topic, 0, 0, 1 << 30).await.expect("read");
    assert_eq!(again, all);
    assert_eq!(
        cache.counts().0,
        sent.len() as u64,
        "the second read is served from memory"
    );

    // From an offset inside a batch: that batch first.
    let (mid_base, mid) = &sent[sent.len() / 2];
    let inside = mid_base + i64::from(BatchHeader::parse(mid).unwrap().last_offset_delta);
    let from_mid = reader.read(&db, topic, 0, inside, 1).await.expect("read");
    assert_eq!(from_mid.len(), 1, "max_bytes still returns one batch");
    assert_eq!(
        BatchHeader::parse(&from_mid[0]).unwrap().base_offset,
        *mid_base
    );
    assert!(reader
        .read(&db, topic, 0, end, 1 << 20)
        .await
        .expect("read")
        .is_empty());

    // The writer serves its own fresh batches from memory.
    let writer = PartitionReader::new(store.clone(), writer_cache.clone());
    let (h0, m0) = writer_cache.counts();
    assert_eq!(
        writer.read(&db, topic, 0, 0, 1 << 30).await.expect("read"),
        all
    );
    assert_eq!(writer_cache.counts(), (h0 + sent.len() as u64, m0));

    // A small budget holds at most its size, and reads still come out right.
    let total: usize = all.iter().map(Bytes::len).sum();
    let small = Arc::new(ReadCache::new(total / 3));
    let bounded = PartitionReader::new(store.clone(), small.clone());
    assert_eq!(
        bounded.read(&db, topic, 0, 0, 1 << 30).await.expect("read"),
        all
    );
    assert!(
        small.size() <= total / 3,
        "{} > {}",
        small.size(),
        total / 3
    );
}
