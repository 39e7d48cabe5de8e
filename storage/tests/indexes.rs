//! Index lookups by offset and by timestamp agree with a linear scan of the log.

mod support;

use support::{batch, config, open, read_all};

#[test]
fn offset_and_timestamp_lookups_agree_with_a_linear_scan() {
    let cfg = config(&[("segment.bytes", "4000"), ("index.interval.bytes", "200")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = open(dir.path(), &cfg, false);
    // Timestamps rise overall but not monotonically, as client clocks do.
    let mut stamps = Vec::new();
    for i in 0..200i64 {
        let ts = 10_000 + i * 10 + if i % 7 == 0 { -25 } else { 0 };
        let count = 1 + (i % 3) as usize;
        log.append(&mut batch(count, ts), 100).expect("append");
        for r in 0..count as i64 {
            stamps.push(ts + r);
        }
    }
    assert!(log.segment_count() > 3, "several segments");
    let all = read_all(&log, 0);
    for offset in 0..log.next_offset() {
        let got = read_all(&log, offset).first().map(|b| b.0);
        let expect = all.iter().rev().find(|b| b.0 <= offset).map(|b| b.0);
        assert_eq!(got, expect, "offset {offset}");
    }
    for target in (9_900..12_100).step_by(7) {
        let expect = stamps
            .iter()
            .position(|&t| t >= target)
            .map(|o| (o as i64, stamps[o]));
        let got = log
            .offset_for_timestamp(target)
            .expect("lookup")
            .map(|t| (t.offset, t.timestamp));
        assert_eq!(got, expect, "timestamp {target}");
    }
    let max = *stamps.iter().max().expect("some");
    let first_max = stamps.iter().position(|&t| t == max).expect("present") as i64;
    let got = log.max_timestamp_offset().expect("max").expect("some");
    assert_eq!((got.offset, got.timestamp), (first_max, max));
    // The same answers after a clean restart, from the trimmed on-disk indexes.
    log.close().expect("close");
    let log = open(dir.path(), &cfg, true);
    for target in (9_900..12_100).step_by(13) {
        let expect = stamps.iter().position(|&t| t >= target).map(|o| o as i64);
        assert_eq!(
            log.offset_for_timestamp(target)
                .expect("lookup")
                .map(|t| t.offset),
            expect
        );
    }
}
