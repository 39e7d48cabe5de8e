//! The cluster's broker registry against a real PostgreSQL: migrations applied once however many brokers
//! start together, leases that make a broker live, take-over only after a lease ran out, fencing of the old
//! holder, and a clean leave.
// Test harness code: a failed set-up step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod engines;

use std::time::{Duration, Instant};

use runnel_broker::cluster::registry::live_brokers;
use runnel_broker::cluster::{connect, migrate, Registry, RegistryError};

async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_join_by_lease_and_a_node_id_is_taken_over_only_after_its_lease_ran_out() {
    let pg = engines::Postgres::start();

    // Three brokers starting at once apply each migration exactly once between them.
    let mut applied = Vec::new();
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let url = pg.url.clone();
        starts.spawn(async move {
            let mut c = connect(&url).await.expect("connect");
            migrate(&mut c).await.expect("migrate")
        });
    }
    while let Some(done) = starts.join_next().await {
        applied.extend(done.expect("task"));
    }
    applied.sort();
    assert_eq!(
        applied,
        (1..=9).collect::<Vec<i32>>(),
        "each migration once in all"
    );

    let short = Duration::from_millis(1500);
    let b1 = Registry::register(
        connect(&pg.url).await.expect("connect"),
        1,
        "PLAINTEXT://127.0.0.1:9001",
        Some("rack-a"),
        Duration::from_secs(30),
    )
    .await
    .expect("register 1");
    let b2 = Registry::register(
        connect(&pg.url).await.expect("connect"),
        2,
        "PLAINTEXT://127.0.0.1:9002",
        None,
        short,
    )
    .await
    .expect("register 2");
    let ids = |v: Vec<runnel_broker::cluster::LiveBroker>| {
        v.into_iter().map(|b| b.node_id).collect::<Vec<_>>()
    };
    let live = b1.live().await.expect("live");
    assert_eq!(ids(live.clone()), [1, 2]);
    assert_eq!(live[0].rack.as_deref(), Some("rack-a"));
    assert_eq!(live[0].listeners, "PLAINTEXT://127.0.0.1:9001");

    // While broker 2's lease holds, nobody else may be node 2.
    let again = Registry::register(
        connect(&pg.url).await.expect("connect"),
        2,
        "PLAINTEXT://127.0.0.1:9999",
        None,
        short,
    )
    .await;
    assert!(
        matches!(again, Err(RegistryError::NodeIdInUse(2))),
        "a second node 2 while the first is live"
    );

    // Broker 2 stops heartbeating (a pause, a crash): it drops out of the live list once its lease ends.
    assert!(
        !b2.heartbeat().await.expect("renew").had_expired,
        "a lease renewed in time"
    );
    let watcher = connect(&pg.url).await.expect("connect");
    wait_for(
        "broker 2's lease to run out",
        Duration::from_secs(10),
        || async { ids(live_brokers(&watcher).await.expect("live")) == [1] },
    )
    .await;

    // A new start of node 2 takes the row over; the paused one is fenced when it wakes.
    let b2_new = Registry::register(
        connect(&pg.url).await.expect("connect"),
        2,
        "PLAINTEXT://127.0.0.1:9012",
        None,
        Duration::from_secs(30),
    )
    .await
    .expect("take over an expired node id");
    assert!(
        matches!(b2.heartbeat().await, Err(RegistryError::Lost(2))),
        "the old holder of node 2 is told it lost the id"
    );
    b2.leave().await.expect("a stale leave is harmless");
    let live = live_brokers(&watcher).await.expect("live");
    assert_eq!(ids(live.clone()), [1, 2], "the stale leave removed nothing");
    assert_eq!(live[1].listeners, "PLAINTEXT://127.0.0.1:9012");

    // A lease that ran out while its holder was away (and nobody took it) says so on renewal.
    let b3 = Registry::register(
        connect(&pg.url).await.expect("connect"),
        3,
        "PLAINTEXT://127.0.0.1:9003",
        None,
        Duration::from_millis(300),
    )
    .await
    .expect("register 3");
    tokio::time::sleep(Duration::from_millis(600)).await; // the pause being simulated
    assert!(b3.heartbeat().await.expect("renew").had_expired);

    // A clean stop leaves at once.
    b2_new.leave().await.expect("leave");
    assert_eq!(ids(live_brokers(&watcher).await.expect("live")), [1, 3]);
}
