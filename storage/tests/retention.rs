//! Retention and DeleteRecords remove whole segments only and move the log start offset.

mod support;

use support::{batch, config, open, read_all};

#[test]
fn size_retention_deletes_whole_oldest_segments_only() {
    let cfg = config(&[("segment.bytes", "1000"), ("retention.bytes", "2500")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), &cfg, false);
    for i in 0..60 {
        log.append(&mut batch(2, i), 100).expect("append");
    }
    let bases_before = log.segment_bases();
    let deleted = log.apply_retention(200).expect("retention");
    assert!(deleted > 0);
    let bases_after = log.segment_bases();
    assert_eq!(
        &bases_before[deleted..],
        &bases_after[..],
        "only the oldest whole segments go"
    );
    assert_eq!(log.log_start_offset(), bases_after[0]);
    assert!(log.size_bytes() <= 2500 + 1000);
    let served = read_all(&log, log.log_start_offset());
    assert_eq!(served.first().map(|b| b.0), Some(bases_after[0]));
    assert_eq!(served.last().map(|b| b.0 + 2), Some(120));
    assert!(
        log.read(0, false).is_err(),
        "deleted offsets are out of range"
    );
}

#[test]
fn time_retention_deletes_segments_whose_newest_record_expired() {
    let cfg = config(&[("segment.bytes", "1000"), ("retention.ms", "1000")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), &cfg, false);
    for i in 0..30 {
        log.append(&mut batch(2, i), 100).expect("old");
    }
    let old_end = log.next_offset();
    for i in 0..30 {
        log.append(&mut batch(2, 50_000 + i), 100).expect("new");
    }
    log.apply_retention(50_500).expect("retention");
    let start = log.log_start_offset();
    assert!(
        start > 0 && start <= old_end,
        "start {start}, old end {old_end}"
    );
    assert!(log.segment_bases().contains(&start));
    // Everything expires: the active segment is rolled and deleted too, offsets keep counting.
    log.apply_retention(10_000_000).expect("retention");
    assert_eq!(log.log_start_offset(), 120);
    assert_eq!(
        log.append(&mut batch(1, 10_000_000), 100)
            .expect("append")
            .base_offset,
        120
    );
}

#[test]
fn delete_records_moves_the_start_and_survives_restart() {
    let cfg = config(&[("segment.bytes", "1000")]);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open(dir.path(), &cfg, false);
        for i in 0..40 {
            log.append(&mut batch(2, i), 100).expect("append");
        }
        assert_eq!(log.delete_records_before(33).expect("delete"), 33);
        assert!(log.read(32, false).is_err());
        assert!(log.delete_records_before(1000).is_err());
        log.close().expect("close");
    }
    let log = open(dir.path(), &cfg, true);
    assert_eq!(log.log_start_offset(), 33);
    assert_eq!(
        read_all(&log, 33).first().map(|b| b.0),
        Some(32),
        "batch holding 33 is served whole"
    );
}
