//! Long polls across brokers against a real PostgreSQL: a broker waiting on a partition is woken by another
//! broker's commit through the database's notifications, not by polling, and a wait with nothing committed
//! ends at its timeout. The listener survives a database restart.

// Test harness code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use runnel_broker::cluster::append_watch::AppendWatch;
use runnel_broker::cluster::batch_index::{self, Appended};
use runnel_broker::cluster::commit_pipeline::{CommitPipeline, RoundLimits};
use runnel_broker::cluster::reader::ReadCache;
use runnel_broker::cluster::{connect, migrate};
use runnel_storage::batch::BatchHeader;
use uuid::Uuid;

fn one_record() -> (Bytes, BatchHeader) {
    let bytes = engines::batch_of(&["wake up".to_string()], 1, None);
    let header = BatchHeader::parse(&bytes).expect("header");
    (bytes, header)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_on_one_broker_wakes_when_another_commits() {
    let pg = engines::Postgres::start();
    let s3 = engines::SeaweedFs::start();
    let store = Arc::new(s3.store("watch").await);
    let mut db = connect(&pg.url).await.expect("connect");
    migrate(&mut db).await.expect("migrate");
    let topic = Uuid::new_v4();
    batch_index::create_partitions(&db, topic, 2)
        .await
        .expect("partitions");

    // Broker B listens; broker A commits.
    let watch = AppendWatch::start(
        pg.url.clone(),
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let a = CommitPipeline::start(
        store.clone(),
        pg.url.clone(),
        0,
        RoundLimits::default(),
        Arc::new(ReadCache::new(1 << 20)),
    );
    // The listener connects in the background: commit until it has heard of one.
    let started = Instant::now();
    while watch.high_watermark(topic, 1).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the listener never heard a commit"
        );
        let (bytes, header) = one_record();
        a.append(topic, 1, bytes, header).await.expect("append");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nothing committed to partition 0: the wait ends at its timeout.
    let t = Instant::now();
    assert!(
        !watch
            .wait_beyond(topic, 0, 0, Duration::from_millis(300))
            .await
    );
    assert!(t.elapsed() >= Duration::from_millis(300));

    // A long wait is cut short by A's commit.
    let w = Arc::clone(&watch);
    let waiter = tokio::spawn(async move {
        let t = Instant::now();
        let woke = w.wait_beyond(topic, 0, 0, Duration::from_secs(20)).await;
        (woke, t.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await; // the waiter is waiting
    let (bytes, header) = one_record();
    let committed_at = Instant::now();
    assert_eq!(
        a.append(topic, 0, bytes, header).await.expect("append"),
        Appended::At(0)
    );
    let (woke, waited) = waiter.await.expect("waiter");
    assert!(woke, "the commit woke the waiter");
    assert!(
        waited < Duration::from_secs(5),
        "woken by the notification, not the timeout ({waited:?})"
    );
    eprintln!(
        "woken {:?} after the commit returned",
        committed_at.elapsed()
    );
    assert_eq!(watch.high_watermark(topic, 0), Some(1));

    // The database restarts: the listener reconnects and hears the next commit.
    pg.stop();
    pg.restart();
    let started = Instant::now();
    let mut end = 1; // partition 0's high watermark before the restart
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no notification after the restart"
        );
        let (bytes, header) = one_record();
        if matches!(a.append(topic, 0, bytes, header).await, Ok(Appended::At(_))) {
            end += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if end > 1 && watch.high_watermark(topic, 0) == Some(end) {
            break;
        }
    }
}
