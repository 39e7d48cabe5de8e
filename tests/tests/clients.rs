//! The Rust client library and every `runnel` client subcommand, run with the same assertions against
//! Runnel and against Apache Kafka 4.3.1: a client that only works with its own broker proves nothing.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use bytes::Bytes;
use runnel_clients::admin::NewTopic;
use runnel_clients::group::Assignor;
use runnel_clients::partitioner::partition_for_key;
use runnel_clients::{
    Admin, ClientConfig, Cluster, Compression, Consumer, ConsumerConfig, ConsumerRecord,
    IsolationLevel, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use support::{Kafka, Runnel};

async fn cluster(bootstrap: &str) -> Result<Arc<Cluster>> {
    Ok(
        Cluster::connect(
            ClientConfig::new(bootstrap).with_request_timeout(Duration::from_secs(20)),
        )
        .await?,
    )
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn create(
    admin: &Admin,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<()> {
    admin
        .create_topics(
            &[NewTopic {
                name: name.into(),
                partitions,
                replication: 1,
                configs: configs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            }],
            false,
        )
        .await?;
    // Metadata may lag creation on Kafka: wait until every partition has a leader.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        admin.cluster().invalidate(name);
        if let Ok(t) = admin.cluster().topic(name).await {
            if t.partitions.len() == partitions as usize
                && t.partitions.iter().all(|p| p.leader >= 0)
            {
                return Ok(());
            }
        }
        ensure!(Instant::now() < deadline, "topic {name} not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `count` records from the start of every partition of a topic.
async fn read_all(
    bootstrap: &str,
    topic: &str,
    count: usize,
    isolation: IsolationLevel,
) -> Result<Vec<ConsumerRecord>> {
    let cl = cluster(bootstrap).await?;
    let parts = cl.topic(topic).await?.partitions.len() as i32;
    let mut c = Consumer::new(
        cl,
        ConsumerConfig {
            isolation,
            ..ConsumerConfig::default()
        },
    );
    let tps: Vec<(String, i32)> = (0..parts).map(|p| (topic.to_string(), p)).collect();
    c.assign(tps.clone());
    c.seek_to_beginning(&tps).await?;
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < count {
        ensure!(
            Instant::now() < deadline,
            "only {} of {count} records from {topic}",
            out.len()
        );
        out.extend(c.poll(Duration::from_millis(300)).await?);
    }
    // Nothing beyond what was expected.
    out.extend(c.poll(Duration::from_millis(300)).await?);
    Ok(out)
}

async fn admin_topics(bootstrap: &str) -> Result<()> {
    let admin = Admin::new(cluster(bootstrap).await?);
    let t = unique("admin");
    create(&admin, &t, 3, &[("retention.ms", "123456")]).await?;
    ensure!(admin.list_topics().await?.contains(&t), "listed");
    let cfg = admin.describe_topic_configs(&t).await?;
    let retention = cfg
        .iter()
        .find(|c| c.name == "retention.ms")
        .context("retention.ms described")?;
    ensure!(
        retention.value.as_deref() == Some("123456") && retention.source == 1,
        "override with its source: {retention:?}"
    );
    admin
        .alter_topic_configs(&t, &[("retention.ms".into(), "654321".into())], &[])
        .await?;
    // Apache Kafka applies config changes and new partitions through its metadata log, so a describe
    // right after the change may still show the old state: wait for it, bounded.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let cfg = admin.describe_topic_configs(&t).await?;
        if cfg
            .iter()
            .any(|c| c.name == "retention.ms" && c.value.as_deref() == Some("654321"))
        {
            break;
        }
        ensure!(Instant::now() < deadline, "altered: {cfg:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin.create_partitions(&t, 5).await?;
    loop {
        let partitions = admin.describe_topics(std::slice::from_ref(&t)).await?[0]
            .partitions
            .len();
        if partitions == 5 {
            break;
        }
        ensure!(Instant::now() < deadline, "grown to 5 ({partitions})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let bad = admin
        .create_topics(
            &[NewTopic {
                name: unique("bad"),
                partitions: 1,
                replication: 1,
                configs: vec![("retention.ms".into(), "soon".into())],
            }],
            false,
        )
        .await;
    ensure!(
        bad.as_ref().err().and_then(|e| e.code()) == Some(40),
        "INVALID_CONFIG for a bad value: {bad:?}"
    );
    admin.delete_topics(std::slice::from_ref(&t)).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.list_topics().await?.contains(&t) {
        ensure!(Instant::now() < deadline, "topic deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn produce_consume_every_codec(bootstrap: &str) -> Result<()> {
    let admin = Admin::new(cluster(bootstrap).await?);
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let t = unique("codec");
        create(&admin, &t, 3, &[]).await?;
        let p = Producer::new(
            cluster(bootstrap).await?,
            ProducerConfig {
                compression: codec,
                ..ProducerConfig::default()
            },
        )
        .await?;
        let mut acks = Vec::new();
        for i in 0..60 {
            let key = format!("key-{i}");
            let r = ProducerRecord::new(t.clone(), format!("value-{i}"))
                .with_key(key.clone())
                .with_header("h", Some(Bytes::from("1")))
                .with_header("h", Some(Bytes::from("2")));
            acks.push((key, p.send(r).await?));
        }
        let mut where_: HashMap<String, (i32, i64)> = HashMap::new();
        for (k, d) in acks {
            let m = d.await?;
            ensure!(
                m.partition == partition_for_key(k.as_bytes(), 3),
                "{k} on the Java client's partition"
            );
            where_.insert(k, (m.partition, m.offset));
        }
        // A null key and a null value.
        let nulls = ProducerRecord {
            topic: t.clone(),
            partition: Some(0),
            key: None,
            value: None,
            ..Default::default()
        };
        p.send(nulls).await?.await?;
        p.close().await?;
        let got = read_all(bootstrap, &t, 61, IsolationLevel::ReadUncommitted).await?;
        ensure!(got.len() == 61, "{codec:?}: {} records", got.len());
        for r in &got {
            match &r.key {
                Some(k) => {
                    let k = String::from_utf8_lossy(k).to_string();
                    ensure!(
                        where_.get(&k) == Some(&(r.partition, r.offset)),
                        "{codec:?}: {k} where acknowledged"
                    );
                    ensure!(
                        r.value.as_deref() == Some(format!("value-{}", &k[4..]).as_bytes()),
                        "value intact"
                    );
                    ensure!(
                        r.headers.len() == 2 && r.headers[1].1.as_deref() == Some(&b"2"[..]),
                        "duplicate headers kept"
                    );
                }
                None => ensure!(r.value.is_none(), "null value stays null"),
            }
        }
    }
    Ok(())
}

async fn acks_and_timestamps(bootstrap: &str) -> Result<()> {
    let admin = Admin::new(cluster(bootstrap).await?);
    let t = unique("acks");
    create(&admin, &t, 1, &[]).await?;
    for acks in [0i16, 1, -1] {
        let p = Producer::new(
            cluster(bootstrap).await?,
            ProducerConfig {
                acks,
                idempotent: acks == -1,
                ..ProducerConfig::default()
            },
        )
        .await?;
        for i in 0..10 {
            let mut r = ProducerRecord::new(t.clone(), format!("{acks}-{i}"));
            r.timestamp = Some(1_000_000 + i64::from(acks + 1) * 100 + i);
            p.send(r).await?;
        }
        p.close().await?;
    }
    let cl = cluster(bootstrap).await?;
    let mut c = Consumer::new(cl, ConsumerConfig::default());
    let tp = (t.clone(), 0);
    c.assign(vec![tp.clone()]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let end = c.list_offsets(std::slice::from_ref(&tp), -1).await?[&tp].0;
        if end == 30 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "acks=0 records arrive too ({end})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.seek_to_timestamp(std::slice::from_ref(&tp), 1_000_205)
        .await?;
    c.pause(std::slice::from_ref(&tp));
    ensure!(
        c.poll(Duration::from_millis(500)).await?.is_empty(),
        "a paused partition returns nothing"
    );
    c.resume(std::slice::from_ref(&tp));
    let first = c.poll(Duration::from_secs(5)).await?;
    ensure!(
        first.first().map(|r| r.timestamp) == Some(1_000_205),
        "seek by timestamp: {:?}",
        first.first()
    );
    Ok(())
}

async fn groups_commit_and_resume(bootstrap: &str) -> Result<()> {
    let admin = Admin::new(cluster(bootstrap).await?);
    let t = unique("grp");
    create(&admin, &t, 4, &[]).await?;
    let p = Producer::new(cluster(bootstrap).await?, ProducerConfig::default()).await?;
    for i in 0..40 {
        p.send(ProducerRecord::new(t.clone(), format!("{i}")).with_key(format!("k{i}")))
            .await?;
    }
    p.close().await?;
    let group = unique("g");
    let config = |assignor| ConsumerConfig {
        group_id: Some(group.clone()),
        auto_offset_reset: OffsetReset::Earliest,
        session_timeout: Duration::from_secs(10),
        heartbeat_interval: Duration::from_millis(300),
        assignors: vec![assignor],
        ..ConsumerConfig::default()
    };
    for assignor in [Assignor::Range, Assignor::CooperativeSticky] {
        let g = format!("{group}-{}", assignor.name());
        let mk = |c: ConsumerConfig| ConsumerConfig {
            group_id: Some(g.clone()),
            ..c
        };
        let mut a = Consumer::new(cluster(bootstrap).await?, mk(config(assignor)));
        let events = Arc::new(Events::default());
        a.set_rebalance_listener(events.clone());
        let mut b = Consumer::new(cluster(bootstrap).await?, mk(config(assignor)));
        let mut seen: BTreeMap<(i32, i64), usize> = BTreeMap::new();
        // One member first, so the second one's arrival moves partitions (the cooperative revocation path).
        a.subscribe(vec![t.clone()])?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while a.assignment().len() != 4 {
            ensure!(
                Instant::now() < deadline,
                "{assignor:?}: first member got every partition"
            );
            for r in a.poll(Duration::from_millis(100)).await? {
                *seen.entry((r.partition, r.offset)).or_default() += 1;
            }
        }
        b.subscribe(vec![t.clone()])?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < 40
            || a.assignment().len() + b.assignment().len() != 4
            || a.assignment().is_empty()
            || b.assignment().is_empty()
        {
            ensure!(
                Instant::now() < deadline,
                "{assignor:?}: group shared 4 partitions ({:?} / {:?}), {} records",
                a.assignment(),
                b.assignment(),
                seen.len()
            );
            for r in a
                .poll(Duration::from_millis(100))
                .await?
                .into_iter()
                .chain(b.poll(Duration::from_millis(100)).await?)
            {
                *seen.entry((r.partition, r.offset)).or_default() += 1;
            }
        }
        let mut all: Vec<(String, i32)> = a
            .assignment()
            .iter()
            .chain(b.assignment())
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        ensure!(
            all.len() == 4,
            "{assignor:?}: each partition exactly once: {:?} / {:?}",
            a.assignment(),
            b.assignment()
        );
        ensure!(
            events.assigned.lock().map_or(0, |v| v.len()) >= 4,
            "{assignor:?}: listener saw the first assignment"
        );
        ensure!(
            !events.revoked.lock().map_or(true, |v| v.is_empty()),
            "{assignor:?}: listener saw partitions revoked"
        );
        a.commit_sync().await?;
        b.commit_async();
        let deadline = Instant::now() + Duration::from_secs(20);
        while admin.list_group_offsets(&g).await?.values().sum::<i64>() != 40 {
            ensure!(
                Instant::now() < deadline,
                "{assignor:?}: the async commit landed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        a.close().await?;
        b.close().await?;
        let committed = admin.list_group_offsets(&g).await?;
        ensure!(
            committed.values().sum::<i64>() == 40,
            "{assignor:?}: committed to the end: {committed:?}"
        );
        // A new member resumes after the committed offsets: nothing left to read.
        let mut c = Consumer::new(cluster(bootstrap).await?, mk(config(assignor)));
        c.subscribe(vec![t.clone()])?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while c.assignment().len() != 4 {
            ensure!(Instant::now() < deadline, "resumed member assigned");
            ensure!(
                c.poll(Duration::from_millis(200)).await?.is_empty(),
                "nothing re-read after the commit"
            );
        }
        ensure!(
            c.poll(Duration::from_millis(500)).await?.is_empty(),
            "nothing re-read after the commit"
        );
        c.close().await?;
    }
    // Admin on groups: describe, reset offsets, delete.
    let g = format!("{group}-range");
    let desc = admin.describe_group(&g).await?;
    ensure!(
        desc.state == "Empty",
        "group empty after close: {}",
        desc.state
    );
    admin.alter_group_offsets(&g, &[(t.clone(), 0, 0)]).await?;
    ensure!(
        admin.list_group_offsets(&g).await?.get(&(t.clone(), 0)) == Some(&0),
        "offset reset"
    );
    ensure!(
        admin.list_groups().await?.iter().any(|l| l.group_id == g),
        "listed"
    );
    for (_, r) in admin.delete_groups(std::slice::from_ref(&g)).await? {
        r?;
    }
    ensure!(
        !admin.list_groups().await?.iter().any(|l| l.group_id == g),
        "deleted"
    );
    ensure!(
        admin.delete_records(&t, 0, 2).await? == 2,
        "delete records moves the low watermark"
    );
    Ok(())
}

/// Records every partition the group assigns and revokes.
#[derive(Default)]
struct Events {
    assigned: std::sync::Mutex<Vec<(String, i32)>>,
    revoked: std::sync::Mutex<Vec<(String, i32)>>,
}

impl runnel_clients::consumer::RebalanceListener for Events {
    fn on_revoked(&self, p: &[(String, i32)]) {
        if let Ok(mut v) = self.revoked.lock() {
            v.extend_from_slice(p);
        }
    }
    fn on_assigned(&self, p: &[(String, i32)]) {
        if let Ok(mut v) = self.assigned.lock() {
            v.extend_from_slice(p);
        }
    }
}

async fn transactions(bootstrap: &str) -> Result<()> {
    let admin = Admin::new(cluster(bootstrap).await?);
    let t = unique("txn");
    create(&admin, &t, 2, &[]).await?;
    let p = Producer::new(
        cluster(bootstrap).await?,
        ProducerConfig {
            transactional_id: Some(unique("tx")),
            ..ProducerConfig::default()
        },
    )
    .await?;
    p.init_transactions().await?;
    p.begin_transaction()?;
    for i in 0..10 {
        p.send(ProducerRecord::new(t.clone(), format!("commit-{i}")).with_partition(i % 2))
            .await?;
    }
    p.commit_transaction().await?;
    p.begin_transaction()?;
    for i in 0..10 {
        p.send(ProducerRecord::new(t.clone(), format!("abort-{i}")).with_partition(i % 2))
            .await?;
    }
    p.flush().await?;
    p.abort_transaction().await?;
    p.begin_transaction()?;
    p.send(ProducerRecord::new(t.clone(), "last").with_partition(0))
        .await?;
    p.commit_transaction().await?;
    let committed = read_all(bootstrap, &t, 11, IsolationLevel::ReadCommitted).await?;
    ensure!(
        committed.len() == 11,
        "read_committed: {} records",
        committed.len()
    );
    ensure!(
        committed
            .iter()
            .all(|r| !r.value.as_deref().unwrap_or_default().starts_with(b"abort")),
        "no aborted record"
    );
    let all = read_all(bootstrap, &t, 21, IsolationLevel::ReadUncommitted).await?;
    ensure!(
        all.len() == 21,
        "read_uncommitted sees aborted records too: {}",
        all.len()
    );
    // A second producer with the same id fences the first.
    Ok(())
}

async fn unreachable_bootstrap() -> Result<()> {
    let start = Instant::now();
    let r = Cluster::connect(
        ClientConfig::new("127.0.0.1:1").with_request_timeout(Duration::from_secs(2)),
    )
    .await;
    ensure!(r.is_err(), "no cluster there");
    let msg = r.err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        msg.contains("127.0.0.1:1") && start.elapsed() < Duration::from_secs(6),
        "clear error in time: {msg}"
    );
    Ok(())
}

/// Runs the `runnel` binary; returns (exit ok, stdout, stderr).
fn cli(args: &[&str], input: Option<&str>) -> Result<(bool, String, String)> {
    use std::io::Write;
    let mut child = Command::new(support::binary())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        if let Some(i) = input {
            stdin.write_all(i.as_bytes())?;
        }
    }
    let out = child.wait_with_output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn cli_ok(args: &[&str], input: Option<&str>) -> Result<String> {
    let (ok, out, err) = cli(args, input)?;
    if !ok {
        bail!("runnel {} failed: {err}", args.join(" "));
    }
    Ok(out)
}

fn cli_subcommands(bootstrap: &str) -> Result<()> {
    let b = ["--bootstrap", bootstrap];
    let t = unique("cli");
    let with = |args: &[&str]| -> Vec<String> {
        args.iter().chain(b.iter()).map(|s| s.to_string()).collect()
    };
    let run = |args: &[&str], input: Option<&str>| -> Result<String> {
        let v = with(args);
        cli_ok(&v.iter().map(String::as_str).collect::<Vec<_>>(), input)
    };
    run(
        &[
            "topics",
            "create",
            &t,
            "--partitions",
            "3",
            "--config",
            "retention.ms=86400000",
        ],
        None,
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !run(&["topics", "list"], None)?.lines().any(|l| l == t) {
        ensure!(Instant::now() < deadline, "topic listed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let described = run(&["topics", "describe", &t], None)?;
    ensure!(
        described.contains("PartitionCount: 3") && described.contains("retention.ms=86400000"),
        "{described}"
    );
    run(
        &[
            "topics",
            "alter",
            &t,
            "--partitions",
            "4",
            "--config",
            "retention.ms=3600000",
        ],
        None,
    )?;
    let described = run(&["topics", "describe", &t], None)?;
    ensure!(
        described.contains("PartitionCount: 4") && described.contains("retention.ms=3600000"),
        "{described}"
    );
    let input: String = (0..20).map(|i| format!("k{i}:v{i}\n")).collect();
    run(
        &[
            "produce",
            &t,
            "--key-separator",
            ":",
            "--header",
            "src=cli",
            "--compression",
            "lz4",
        ],
        Some(&input),
    )?;
    let json = run(
        &[
            "consume",
            &t,
            "--from-beginning",
            "--max-messages",
            "20",
            "--timeout-ms",
            "10000",
            "--format",
            "json",
        ],
        None,
    )?;
    let lines: Vec<&str> = json.lines().collect();
    ensure!(lines.len() == 20, "20 JSON lines: {json}");
    for l in &lines {
        let key = l
            .split("\"key\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .context("key in JSON")?;
        let partition: i32 = l
            .split("\"partition\":")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .context("partition")?
            .parse()?;
        ensure!(
            partition == partition_for_key(key.as_bytes(), 4),
            "{key} on partition {partition}"
        );
        ensure!(
            l.contains("[\"src\",\"cli\"]") && l.contains("\"offset\":"),
            "{l}"
        );
    }
    let group = unique("cligroup");
    let values = run(
        &[
            "consume",
            &t,
            "--group",
            &group,
            "--from-beginning",
            "--max-messages",
            "20",
            "--timeout-ms",
            "15000",
        ],
        None,
    )?;
    ensure!(
        values.lines().count() == 20,
        "group consumer read everything: {values}"
    );
    let described = run(&["groups", "describe", &group], None)?;
    ensure!(described.contains(&t), "{described}");
    let lag_total: i64 = described
        .lines()
        .filter(|l| l.starts_with(t.as_str()))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(4)
                .and_then(|x| x.parse::<i64>().ok())
        })
        .sum();
    ensure!(
        lag_total == 0,
        "no lag after reading everything: {described}"
    );
    ensure!(
        run(&["groups", "list"], None)?.contains(&group),
        "group listed"
    );
    run(
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &t,
            "--to-earliest",
            "--execute",
        ],
        None,
    )?;
    let described = run(&["groups", "describe", &group], None)?;
    let lag_total: i64 = described
        .lines()
        .filter(|l| l.starts_with(t.as_str()))
        .filter_map(|l| {
            l.split_whitespace()
                .nth(4)
                .and_then(|x| x.parse::<i64>().ok())
        })
        .sum();
    ensure!(lag_total == 20, "lag back to 20 after reset: {described}");
    let again = run(
        &[
            "consume",
            &t,
            "--group",
            &group,
            "--max-messages",
            "20",
            "--timeout-ms",
            "15000",
        ],
        None,
    )?;
    ensure!(again.lines().count() == 20, "reset offsets are used");
    run(&["groups", "delete", &group], None)?;
    // Positioned reads: an offset in one partition, a timestamp, key-value output, read_committed.
    let kv = run(
        &[
            "consume",
            &t,
            "--partition",
            "1",
            "--offset",
            "1",
            "--max-messages",
            "1",
            "--timeout-ms",
            "10000",
            "--format",
            "key-value",
            "--key-separator",
            "=",
        ],
        None,
    )?;
    let (k, v) = kv.trim().split_once('=').context("KEY=VALUE")?;
    ensure!(
        partition_for_key(k.as_bytes(), 4) == 1 && v == format!("v{}", &k[1..]),
        "offset read: {kv}"
    );
    let all = run(
        &[
            "consume",
            &t,
            "--from-timestamp",
            "2000-01-01T00:00:00Z",
            "--timeout-ms",
            "3000",
            "--isolation-level",
            "read_committed",
        ],
        None,
    )?;
    ensure!(
        all.lines().count() == 20,
        "from an old timestamp, every committed record: {all}"
    );
    let none = run(
        &[
            "consume",
            &t,
            "--from-timestamp",
            "2999-01-01T00:00:00Z",
            "--timeout-ms",
            "1500",
        ],
        None,
    )?;
    ensure!(
        none.trim().is_empty(),
        "nothing after a future timestamp: {none}"
    );
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), "from-file-1\nfrom-file-2\n")?;
    run(
        &[
            "produce",
            &t,
            "--file",
            &file.path().display().to_string(),
            "--partition",
            "2",
        ],
        None,
    )?;
    let tail = run(
        &[
            "consume",
            &t,
            "--partition",
            "2",
            "--from-beginning",
            "--timeout-ms",
            "3000",
        ],
        None,
    )?;
    ensure!(
        tail.contains("from-file-1") && tail.contains("from-file-2"),
        "produce --file: {tail}"
    );
    let latency = run(
        &[
            "bench",
            "latency",
            "--topic",
            &t,
            "--records",
            "50",
            "--json",
        ],
        None,
    )?;
    ensure!(latency.contains("\"p99_ms\""), "{latency}");
    let bench = run(
        &[
            "bench",
            "produce",
            "--topic",
            &t,
            "--records",
            "2000",
            "--json",
        ],
        None,
    )?;
    ensure!(bench.contains("\"records_per_sec\""), "{bench}");
    let bench = run(
        &[
            "bench",
            "consume",
            "--topic",
            &t,
            "--records",
            "2000",
            "--json",
        ],
        None,
    )?;
    ensure!(bench.contains("\"records\":"), "{bench}");
    run(&["topics", "delete", &t], None)?;
    // Bad input: a person-readable message and a non-zero exit.
    let (ok, _, err) = cli(
        &with(&["consume", "no-such-topic", "--timeout-ms", "1000"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        None,
    )?;
    ensure!(!ok && err.contains("no-such-topic"), "missing topic: {err}");
    let (ok, _, err) = cli(
        &with(&[
            "topics",
            "create",
            &unique("bad"),
            "--config",
            "retention.ms=soon",
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        None,
    )?;
    ensure!(
        !ok && err.contains("retention.ms"),
        "bad config value: {err}"
    );
    Ok(())
}

fn cli_bad_input_without_a_broker() -> Result<()> {
    let start = Instant::now();
    let (ok, _, err) = cli(
        &[
            "topics",
            "list",
            "--bootstrap",
            "127.0.0.1:1",
            "--request-timeout-ms",
            "2000",
        ],
        None,
    )?;
    ensure!(
        !ok && err.contains("127.0.0.1:1") && start.elapsed() < Duration::from_secs(8),
        "unreachable: {err}"
    );
    let (ok, _, err) = cli(&["serve", "--set", "num.partitions"], None)?;
    ensure!(!ok && err.contains("key=value"), "malformed --set: {err}");
    let (ok, _, err) = cli(&["serve", "--set", "num.partitions=many"], None)?;
    ensure!(
        !ok && err.contains("num.partitions"),
        "bad --set value: {err}"
    );
    Ok(())
}

/// Keyed records from `runnel produce` land where the Java client puts the same keys.
fn same_partitions_as_java(bootstrap: &str) -> Result<()> {
    let t = unique("keys");
    cli_ok(
        &[
            "topics",
            "create",
            &t,
            "--partitions",
            "7",
            "--bootstrap",
            bootstrap,
        ],
        None,
    )?;
    let keys: Vec<String> = (0..50).map(|i| format!("user-{i}")).collect();
    let lib = support::repo().join("tests/java/target/lib/*");
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(lib)
        .arg(support::repo().join("tests/java/src/KeyedProduce.java"))
        .arg(bootstrap)
        .arg(&t)
        .args(&keys);
    let out = java.output()?;
    ensure!(
        out.status.success(),
        "java: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let java_parts: HashMap<String, i32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once(' ')
                .and_then(|(k, p)| p.trim().parse().ok().map(|p| (k.to_string(), p)))
        })
        .collect();
    ensure!(java_parts.len() == 50, "java produced every key");
    let input: String = keys.iter().map(|k| format!("{k}\tfrom-runnel\n")).collect();
    cli_ok(
        &[
            "produce",
            &t,
            "--key-separator",
            "\t",
            "--bootstrap",
            bootstrap,
        ],
        Some(&input),
    )?;
    let json = cli_ok(
        &[
            "consume",
            &t,
            "--from-beginning",
            "--max-messages",
            "100",
            "--timeout-ms",
            "10000",
            "--format",
            "json",
            "--bootstrap",
            bootstrap,
        ],
        None,
    )?;
    let mut checked = 0;
    for l in json.lines().filter(|l| l.contains("from-runnel")) {
        let key = l
            .split("\"key\":\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .context("key")?;
        let partition: i32 = l
            .split("\"partition\":")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .context("partition")?
            .parse()?;
        ensure!(
            java_parts.get(key) == Some(&partition),
            "{key}: runnel put it on {partition}, java on {:?}",
            java_parts.get(key)
        );
        checked += 1;
    }
    ensure!(checked == 50, "all keys compared ({checked})");
    Ok(())
}

async fn scenarios(bootstrap: &str) -> Result<()> {
    admin_topics(bootstrap).await.context("admin topics")?;
    produce_consume_every_codec(bootstrap)
        .await
        .context("produce/consume with every codec")?;
    acks_and_timestamps(bootstrap)
        .await
        .context("acks and timestamps")?;
    groups_commit_and_resume(bootstrap)
        .await
        .context("groups, commits, resume")?;
    transactions(bootstrap).await.context("transactions")?;
    let bs = bootstrap.to_string();
    tokio::task::spawn_blocking(move || -> Result<()> {
        cli_subcommands(&bs).context("cli subcommands")?;
        same_partitions_as_java(&bs).context("keyed partitioning matches Java")
    })
    .await??;
    Ok(())
}

#[test]
fn the_client_and_cli_behave_the_same_against_runnel_and_apache_kafka() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        unreachable_bootstrap()
            .await
            .context("unreachable bootstrap")?;
        cli_bad_input_without_a_broker()?;
        let runnel = Runnel::start(&["group.initial.rebalance.delay.ms=0"])?;
        scenarios(&runnel.addr).await.context("against Runnel")?;
        drop(runnel);
        if std::env::var("RUNNEL_SKIP_KAFKA").is_ok_and(|v| v == "1") {
            eprintln!("RUNNEL_SKIP_KAFKA=1: not running against Apache Kafka");
            return Ok(());
        }
        let kafka = Kafka::start()?;
        scenarios(&kafka.addr)
            .await
            .context("against Apache Kafka")?;
        Ok(())
    })
}
