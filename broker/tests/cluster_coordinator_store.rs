//! The coordinators' claims and records against a real PostgreSQL: a claim bumps the key's epoch and reads
//! what the previous holder committed; once another broker has claimed a key, the old holder's queued
//! changes are refused (and reported), while its changes to keys it still holds in the same batch land;
//! group transaction markers are read and deleted with the change that applies them.
// Test harness code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use runnel_broker::cluster::coordinator_store::{CoordinatorStore, KeyKind, RecordWrite};
use runnel_broker::cluster::{connect, migrate};

fn put(record: &str, value: &str) -> RecordWrite {
    RecordWrite::Put {
        record: record.into(),
        value: value.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_fences_the_previous_holder_and_reads_what_it_committed() {
    let pg = engines::Postgres::start();
    migrate(&mut connect(&pg.url).await.expect("connect"))
        .await
        .expect("migrate");
    let one = CoordinatorStore::start(1, pg.url.clone());
    let two = CoordinatorStore::start(2, pg.url.clone());

    let first = one.claim(KeyKind::Group, "g").await.expect("claim");
    assert_eq!(first.epoch, 1, "a new key starts at epoch 1");
    assert!(first.records.is_empty());
    let other = one.claim(KeyKind::Group, "h").await.expect("claim h");

    // Two writes of one record in a batch: the last wins; a delete removes.
    one.enqueue(
        KeyKind::Group,
        "g",
        first.epoch,
        vec![put("a", "1"), put("b", "1")],
    );
    one.enqueue(KeyKind::Group, "g", first.epoch, vec![put("a", "2")]);
    let seq = one.enqueue(
        KeyKind::Group,
        "g",
        first.epoch,
        vec![RecordWrite::Delete { record: "b".into() }],
    );
    one.wait(seq).await;
    assert!(!one.was_refused(KeyKind::Group, "g", first.epoch));

    let taken = two.claim(KeyKind::Group, "g").await.expect("claim by 2");
    assert_eq!(taken.epoch, 2, "a claim bumps the epoch");
    assert_eq!(taken.records, vec![("a".to_string(), "2".to_string())]);

    // Broker 1 does not know yet: its change of g is refused, its change of h (still its own) lands.
    one.enqueue(KeyKind::Group, "g", first.epoch, vec![put("a", "stale")]);
    let seq = one.enqueue(KeyKind::Group, "h", other.epoch, vec![put("x", "1")]);
    one.wait(seq).await;
    assert!(one.was_refused(KeyKind::Group, "g", first.epoch));
    assert!(!one.was_refused(KeyKind::Group, "h", other.epoch));
    assert!(!one
        .still_holds(KeyKind::Group, "g", first.epoch)
        .await
        .expect("query"));
    assert!(two
        .still_holds(KeyKind::Group, "g", taken.epoch)
        .await
        .expect("query"));
    assert_eq!(
        two.record(KeyKind::Group, "g", "a").await.expect("read"),
        Some("2".to_string()),
        "the fenced write did not land"
    );
    assert_eq!(
        one.record(KeyKind::Group, "h", "x").await.expect("read"),
        Some("1".to_string())
    );

    // A transaction's outcome for two groups, then the same producer's next one (aborted) before g's
    // holder applied the first: both stay, in the order written (an abort overwriting the commit would
    // drop the committed offsets); g's holder applies its own and the rows go.
    one.write_markers(&["g".to_string(), "h".to_string()], 7, true)
        .await
        .expect("markers");
    one.write_markers(&["g".to_string()], 7, false)
        .await
        .expect("markers");
    let seen = two.markers(&["g".to_string()]).await.expect("markers");
    let outcomes: Vec<(String, i64, bool)> = seen
        .iter()
        .map(|m| (m.group.clone(), m.producer_id, m.commit))
        .collect();
    assert_eq!(
        outcomes,
        vec![("g".to_string(), 7, true), ("g".to_string(), 7, false)]
    );
    let seq = two.enqueue(
        KeyKind::Group,
        "g",
        taken.epoch,
        seen.iter()
            .map(|m| RecordWrite::MarkerApplied { seq: m.seq })
            .collect(),
    );
    two.wait(seq).await;
    assert!(two
        .markers(&["g".to_string()])
        .await
        .expect("markers")
        .is_empty());
    assert_eq!(
        one.markers(&["h".to_string()])
            .await
            .expect("markers")
            .len(),
        1,
        "h's marker waits for h's holder"
    );
    let reclaimed = two.claim(KeyKind::Group, "h").await.expect("claim h by 2");
    assert_eq!(
        reclaimed
            .markers
            .iter()
            .map(|m| (m.producer_id, m.commit))
            .collect::<Vec<_>>(),
        vec![(7, true)],
        "a claim reads the markers waiting"
    );

    let mut keys = one.keys().await.expect("keys");
    keys.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        keys,
        vec![
            (KeyKind::Group, "g".to_string()),
            (KeyKind::Group, "h".to_string())
        ]
    );
}
