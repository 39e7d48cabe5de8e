//! Crash recovery: torn tails, corruption, clean and unclean restarts.
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;

use support::{batch, config, open, read_all};

fn log_file(dir: &std::path::Path) -> std::path::PathBuf {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment")
}

#[test]
fn a_torn_tail_at_every_byte_of_the_last_batch_recovers_to_the_last_whole_batch() {
    let cfg = config(&[]);
    let template = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open(template.path(), &cfg, false);
        for i in 0..3 {
            log.append(&mut batch(4, i * 10), 100).expect("append");
        }
        // No close: the files stay as a crash would leave them.
    }
    let path = log_file(template.path());
    let full = std::fs::read(&path).expect("read");
    let last_len = batch(4, 20).len();
    let whole = full.len() - last_len;
    for cut in whole..full.len() {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(template.path()).expect("dir") {
            let p = entry.expect("entry").path();
            std::fs::copy(&p, dir.path().join(p.file_name().expect("name"))).expect("copy");
        }
        let seg = log_file(dir.path());
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .expect("open")
            .set_len(cut as u64)
            .expect("cut");
        let mut log = open(dir.path(), &cfg, false);
        assert_eq!(log.next_offset(), 8, "cut at byte {cut}");
        assert_eq!(
            std::fs::metadata(&seg).expect("meta").len() as usize,
            whole,
            "file truncated, cut {cut}"
        );
        let batches = read_all(&log, 0);
        assert_eq!(batches.iter().map(|b| b.0).collect::<Vec<_>>(), vec![0, 4]);
        // Offsets continue after the last whole batch.
        let info = log
            .append(&mut batch(1, 99), 100)
            .expect("append after recovery");
        assert_eq!(info.base_offset, 8);
    }
}

#[test]
fn a_corrupt_crc_in_the_middle_of_a_segment_is_detected_and_nothing_after_it_is_served() {
    let cfg = config(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let sizes: Vec<usize> = (0..5).map(|i| batch(3, i).len()).collect();
    {
        let mut log = open(dir.path(), &cfg, false);
        for i in 0..5 {
            log.append(&mut batch(3, i), 100).expect("append");
        }
    }
    // Flip one byte inside the records of the third batch.
    let seg = log_file(dir.path());
    let at = sizes[0] + sizes[1] + 70;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&seg)
        .expect("open");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at as u64).expect("read");
    f.write_all_at(&[b[0] ^ 0xff], at as u64).expect("write");
    drop(f);
    let log = open(dir.path(), &cfg, false);
    assert_eq!(log.next_offset(), 6, "log ends before the corrupt batch");
    let served = read_all(&log, 0);
    assert_eq!(served.len(), 2);
    for (_, bytes) in served {
        runnel_storage::batch::validate(&bytes).expect("every served batch is valid");
    }
}

#[test]
fn a_clean_restart_keeps_every_batch_and_the_index() {
    let cfg = config(&[("segment.bytes", "1200"), ("index.interval.bytes", "100")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let before;
    {
        let mut log = open(dir.path(), &cfg, false);
        for i in 0..40 {
            log.append(&mut batch(2, i * 2), 100).expect("append");
        }
        assert!(
            log.segment_count() > 2,
            "segments: {:?}",
            log.segment_bases()
        );
        before = read_all(&log, 0);
        log.close().expect("close");
    }
    let log = open(dir.path(), &cfg, true);
    assert_eq!(log.next_offset(), 80);
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(read_all(&log, 37).first().map(|b| b.0), Some(36));
}

#[test]
fn an_unclean_restart_keeps_every_whole_batch_across_segments() {
    let cfg = config(&[("segment.bytes", "1500")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let before;
    {
        let mut log = open(dir.path(), &cfg, false);
        for i in 0..30 {
            log.append(&mut batch(3, i), 100).expect("append");
        }
        before = read_all(&log, 0);
    }
    let mut log = open(dir.path(), &cfg, false);
    assert_eq!(log.next_offset(), 90);
    assert_eq!(read_all(&log, 0), before);
    assert_eq!(
        log.append(&mut batch(1, 0), 100)
            .expect("append")
            .base_offset,
        90
    );
}

#[test]
fn idempotent_producer_state_survives_restart() {
    use runnel_storage::builder::{BatchBuilder, Record};
    let cfg = config(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    let make = |seq: i32| {
        BatchBuilder {
            producer_id: 5,
            producer_epoch: 0,
            base_sequence: seq,
            ..Default::default()
        }
        .build(&[Record {
            timestamp: 1,
            key: None,
            value: Some(b"v"),
            headers: &[],
        }])
    };
    {
        let mut log = open(dir.path(), &cfg, false);
        log.append(&mut make(0), 1).expect("first");
        log.append(&mut make(1), 1).expect("second");
    }
    for clean in [false, true] {
        let mut log = open(dir.path(), &cfg, clean);
        let retry = log.append(&mut make(1), 1).expect("retry");
        assert!(retry.duplicate);
        assert_eq!(retry.base_offset, 1);
        assert!(log.append(&mut make(5), 1).is_err(), "gap refused");
        if !clean {
            log.close().expect("close");
        }
    }
}
