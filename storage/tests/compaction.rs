//! Log compaction keeps the newest record per key in closed segments and drops old tombstones.
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use bytes::Bytes;
use runnel_storage::batch::validate;
use runnel_storage::builder::{BatchBuilder, Record};
use runnel_storage::records::read_records;
use runnel_storage::{PartitionLog, StorageError};
use support::{config, open, read_all};

fn keyed(key: &str, value: Option<&str>, ts: i64) -> Vec<u8> {
    BatchBuilder::default().build(&[Record {
        timestamp: ts,
        key: Some(key.as_bytes()),
        value: value.map(str::as_bytes),
        headers: &[],
    }])
}

/// (offset, key, value) of every record the fetch path serves.
fn records(log: &PartitionLog) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    for (_, bytes) in read_all(log, log.log_start_offset()) {
        let bytes = Bytes::from(bytes);
        let h = validate(&bytes).expect("valid");
        for r in read_records(&bytes, &h).expect("records") {
            let s = |b: Option<Bytes>| b.map(|b| String::from_utf8_lossy(&b).into_owned());
            out.push((r.offset, s(r.key).unwrap_or_default(), s(r.value)));
        }
    }
    out
}

#[test]
fn keyless_records_are_refused_on_compacted_topics() {
    let cfg = config(&[("cleanup.policy", "compact")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), &cfg, false);
    let record = |key: Option<&'static [u8]>| Record {
        timestamp: 1,
        key,
        value: Some(b"v"),
        headers: &[],
    };
    let mut mixed =
        BatchBuilder::default().build(&[record(None), record(Some(b"k")), record(None)]);
    match log.append(&mut mixed, 1) {
        Err(StorageError::MissingKey { records }) => assert_eq!(records, vec![0, 2]),
        other => panic!("expected MissingKey naming records 0 and 2, got {other:?}"),
    }
    assert_eq!(log.next_offset(), 0);
}

#[test]
fn compaction_keeps_the_newest_record_per_key_at_its_offset() {
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "300"),
        ("delete.retention.ms", "1000"),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), &cfg, false);
    let mut expect: BTreeMap<String, (i64, Option<String>)> = BTreeMap::new();
    let mut ts = 0;
    for round in 0..6 {
        for k in ["a", "b", "c", "d"] {
            let value = format!("{k}{round}");
            let info = log
                .append(&mut keyed(k, Some(&value), ts), 1)
                .expect("append");
            expect.insert(k.to_string(), (info.base_offset, Some(value)));
            ts += 1;
        }
    }
    // An old tombstone for b (will be dropped) and a fresh one for c (kept).
    let b_tomb = log
        .append(&mut keyed("b", None, 10), 1)
        .expect("tombstone")
        .base_offset;
    let c_tomb = log
        .append(&mut keyed("c", None, 100_000), 1)
        .expect("tombstone")
        .base_offset;
    for i in 0..8 {
        log.append(&mut keyed("z", Some(&format!("z{i}")), 100_000 + i), 1)
            .expect("filler");
    }
    let active_base = *log.segment_bases().last().expect("segments");
    assert!(c_tomb < active_base, "tombstones are in closed segments");
    let before = records(&log);
    let stats = log.compact(100_500).expect("compact");
    assert!(stats.records_removed > 0 && stats.bytes_after < stats.bytes_before);
    let after = records(&log);
    // Every record kept is the newest for its key among closed segments, at its original offset.
    let closed: Vec<_> = before.iter().filter(|r| r.0 < active_base).collect();
    let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &closed {
        newest.insert(&r.1, r.0);
    }
    for r in after.iter().filter(|r| r.0 < active_base) {
        assert_eq!(
            newest.get(r.1.as_str()),
            Some(&r.0),
            "only newest kept: {r:?}"
        );
        assert!(before.contains(r), "kept record unchanged: {r:?}");
    }
    assert!(
        !after.iter().any(|r| r.0 == b_tomb),
        "expired tombstone dropped"
    );
    assert!(
        after.iter().any(|r| r.0 == c_tomb && r.2.is_none()),
        "fresh tombstone kept"
    );
    assert!(after.iter().any(|r| r.1 == "a" && r.0 == expect["a"].0));
    // Records in the active segment are untouched, and the log reopens from disk the same.
    assert_eq!(
        after
            .iter()
            .filter(|r| r.0 >= active_base)
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|r| r.0 >= active_base)
            .collect::<Vec<_>>()
    );
    let next = log.next_offset();
    drop(log);
    let log = open(dir.path(), &cfg, false);
    assert_eq!(log.next_offset(), next);
    assert_eq!(records(&log), after);
}
