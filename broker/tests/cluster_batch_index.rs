//! The produce commit path of cluster mode against real engines: three committers (standing in for three
//! brokers) upload objects of batches for the same 12 partitions at once and commit them through the batch
//! index; every partition's offsets come out dense and never reused, idempotent retries are recognised as
//! duplicates, sequence gaps and old epochs are refused, and every batch reads back from object storage
//! byte for byte through the index.

// Test harness code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use runnel_broker::cluster::batch_index::{self, Appended, Staged};
use runnel_broker::cluster::objects::ObjectStorage;
use runnel_broker::cluster::{connect, migrate};
use runnel_storage::batch::BatchHeader;
use runnel_storage::log::ControlType;
use uuid::Uuid;

const PARTITIONS: i32 = 12;

fn batch(value: &str, records: usize, producer: Option<(i64, i16, i32)>) -> Vec<u8> {
    let values: Vec<String> = (0..records).map(|i| format!("{value}/{i}")).collect();
    engines::batch_of(&values, 1_700_000_000_000, producer).to_vec()
}

/// Packs batches into one object body and stages them.
fn stage(topic_id: Uuid, batches: &[(i32, Vec<u8>)]) -> (Bytes, Vec<Staged>) {
    let mut body = BytesMut::new();
    let mut staged = Vec::new();
    for (partition, bytes) in batches {
        staged.push(Staged {
            topic_id,
            partition: *partition,
            header: BatchHeader::parse(bytes).expect("header"),
            byte_offset: body.len() as u64,
            byte_length: bytes.len() as u32,
            control: ControlType::Other,
        });
        body.extend_from_slice(bytes);
    }
    (body.freeze(), staged)
}

/// Uploads one batch for partition 3 and commits it alone.
async fn commit_one(
    store: &ObjectStorage,
    client: &mut tokio_postgres::Client,
    topic: Uuid,
    bytes: Vec<u8>,
) -> Appended {
    let (body, staged) = stage(topic, &[(3, bytes)]);
    let key = store.put_new(body.clone()).await.expect("upload");
    batch_index::commit(client, &key, body.len() as u64, 9, &staged)
        .await
        .expect("commit")[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_give_dense_offsets_and_idempotent_retries_are_duplicates() {
    let pg = engines::Postgres::start();
    let s3 = engines::SeaweedFs::start();
    let store = std::sync::Arc::new(s3.store("batches").await);
    let mut admin = connect(&pg.url).await.expect("connect");
    migrate(&mut admin).await.expect("migrate");
    let topic = Uuid::new_v4();
    batch_index::create_partitions(&admin, topic, PARTITIONS)
        .await
        .expect("partitions");

    // Three committers, 20 objects each, every object holding a batch for every partition.
    let mut tasks = tokio::task::JoinSet::new();
    for broker in 0..3 {
        let (url, store) = (pg.url.clone(), store.clone());
        tasks.spawn(async move {
            let mut client = connect(&url).await.expect("connect");
            let mut written = Vec::new();
            for round in 0..20 {
                let batches: Vec<(i32, Vec<u8>)> = (0..PARTITIONS)
                    .map(|p| {
                        (
                            p,
                            batch(&format!("b{broker}-r{round}-p{p}"), 1 + (round % 3), None),
                        )
                    })
                    .collect();
                let (body, staged) = stage(topic, &batches);
                let key = store.put_new(body.clone()).await.expect("upload");
                let results =
                    batch_index::commit(&mut client, &key, body.len() as u64, broker, &staged)
                        .await
                        .expect("commit");
                for (r, (p, bytes)) in results.into_iter().zip(batches) {
                    let Appended::At(base) = r else {
                        panic!("not appended: {r:?}")
                    };
                    written.push((p, base, bytes));
                }
            }
            written
        });
    }
    let mut by_partition: BTreeMap<i32, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
    while let Some(w) = tasks.join_next().await {
        for (p, base, bytes) in w.expect("committer") {
            by_partition.entry(p).or_default().push((base, bytes));
        }
    }
    for (p, batches) in &mut by_partition {
        batches.sort_by_key(|(base, _)| *base);
        let mut next = 0;
        for (base, bytes) in batches.iter() {
            assert_eq!(*base, next, "partition {p}: offsets dense and never reused");
            next += i64::from(BatchHeader::parse(bytes).expect("header").last_offset_delta) + 1;
        }
        assert_eq!(
            batch_index::high_watermark(&admin, topic, *p)
                .await
                .expect("hw"),
            Some(next)
        );
        // Everything reads back through the index, in order, byte for byte.
        let mut offset = 0;
        let mut read = Vec::new();
        while offset < next {
            let found = batch_index::batches_from(&admin, topic, *p, offset, 64 * 1024)
                .await
                .expect("index");
            assert!(!found.is_empty(), "partition {p}: nothing at {offset}");
            for f in found {
                let bytes = store
                    .get_range(
                        &f.object,
                        f.byte_offset..f.byte_offset + u64::from(f.byte_length),
                    )
                    .await
                    .expect("range");
                read.push((f.base_offset, bytes.to_vec()));
                offset = f.last_offset + 1;
            }
        }
        assert_eq!(
            &read, batches,
            "partition {p}: the log reads back as written"
        );
    }

    // An idempotent producer: a retry is a duplicate at the first write's offset, a gap or an old epoch
    // is refused, a new epoch starts again at sequence 0.
    let mut client = connect(&pg.url).await.expect("connect");
    let first = commit_one(
        &store,
        &mut client,
        topic,
        batch("idem", 3, Some((77, 0, 0))),
    )
    .await;
    let Appended::At(first_offset) = first else {
        panic!("{first:?}")
    };
    assert_eq!(
        commit_one(
            &store,
            &mut client,
            topic,
            batch("idem", 3, Some((77, 0, 0)))
        )
        .await,
        Appended::Duplicate(first_offset)
    );
    assert!(matches!(
        commit_one(&store, &mut client, topic, batch("idem-next", 2, Some((77, 0, 3)))).await,
        Appended::At(o) if o == first_offset + 3
    ));
    assert_eq!(
        commit_one(
            &store,
            &mut client,
            topic,
            batch("gap", 1, Some((77, 0, 9)))
        )
        .await,
        Appended::OutOfOrder
    );
    assert!(matches!(
        commit_one(
            &store,
            &mut client,
            topic,
            batch("epoch-1", 1, Some((77, 1, 0)))
        )
        .await,
        Appended::At(_)
    ));
    assert_eq!(
        commit_one(
            &store,
            &mut client,
            topic,
            batch("old-epoch", 1, Some((77, 0, 5)))
        )
        .await,
        Appended::Fenced
    );
    let (body, mut staged) = stage(topic, &[(0, batch("nowhere", 1, None))]);
    staged[0].partition = PARTITIONS; // no such partition
    let key = store.put_new(body.clone()).await.expect("upload");
    let r = batch_index::commit(&mut client, &key, body.len() as u64, 9, &staged)
        .await
        .expect("commit");
    assert_eq!(r, [Appended::UnknownPartition]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_no_commit_names_are_collected_after_the_grace_period_and_committed_ones_stay() {
    use runnel_broker::cluster::orphans;
    let pg = engines::Postgres::start();
    let s3 = engines::SeaweedFs::start();
    let store = s3.store("orphans").await;
    let mut client = connect(&pg.url).await.expect("connect");
    migrate(&mut client).await.expect("migrate");
    let topic = Uuid::new_v4();
    batch_index::create_partitions(&client, topic, 1)
        .await
        .expect("partitions");

    let committed = commit_one_to(&store, &mut client, topic, 0).await;
    // An upload whose commit never happened (the broker died in between).
    let (body, _) = stage(topic, &[(0, batch("orphan", 1, None))]);
    let orphan = store.put_new(body).await.expect("upload");

    // Within the grace period nothing goes: the commit might still be on its way.
    let grace = std::time::Duration::from_secs(3600);
    assert_eq!(
        orphans::collect(&store, &client, grace)
            .await
            .expect("collect"),
        0
    );
    // Past it, the orphan goes and the committed object stays.
    let none = std::time::Duration::ZERO;
    assert_eq!(
        orphans::collect(&store, &client, none)
            .await
            .expect("collect"),
        1
    );
    assert!(
        store.get_range(&orphan, 0..4).await.is_err(),
        "the orphan is gone"
    );
    assert!(
        store.get_range(&committed, 0..4).await.is_ok(),
        "the committed object stays"
    );
    assert_eq!(
        orphans::collect(&store, &client, none)
            .await
            .expect("collect"),
        0
    );
}

/// Uploads and commits one batch to `partition`; returns the object's key.
async fn commit_one_to(
    store: &ObjectStorage,
    client: &mut tokio_postgres::Client,
    topic: Uuid,
    partition: i32,
) -> runnel_broker::cluster::objects::ObjectKey {
    let (body, staged) = stage(topic, &[(partition, batch("kept", 1, None))]);
    let key = store.put_new(body.clone()).await.expect("upload");
    let r = batch_index::commit(client, &key, body.len() as u64, 9, &staged)
        .await
        .expect("commit");
    assert!(matches!(r[0], Appended::At(_)));
    key
}
