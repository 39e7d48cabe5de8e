//! Damaged files after a clean stop: a clean-shutdown marker vouches for the last run, not for the disk, so
//! every open checks what it trusts, repairs what does not hold, and never hands out an offset twice.
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use support::{batch, config, open, read_all};

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// A cleanly closed log of `segments` segments of 50 four-record batches each; returns its end offset.
fn cleanly_closed_log(dir: &Path, segments: usize) -> i64 {
    let cfg = config(&[("index.interval.bytes", "256")]);
    let mut log = open(dir, &cfg, false);
    for s in 0..segments {
        if s > 0 {
            log.roll(1_000).expect("roll");
        }
        for i in 0..50 {
            log.append(&mut batch(4, i), 1_000).expect("append");
        }
    }
    log.close().expect("close");
    log.next_offset()
}

fn garbage(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 0x80)
        .collect()
}

fn assert_all_readable_and_offsets_continue(dir: &Path, end: i64) {
    let cfg = config(&[("index.interval.bytes", "256")]);
    let mut log = open(dir, &cfg, true);
    let batches = read_all(&log, 0);
    let offsets: Vec<i64> = batches.iter().map(|b| b.0).collect();
    let expected: Vec<i64> = (0..end / 4).map(|b| b * 4).collect();
    assert_eq!(offsets, expected, "every record readable after the repair");
    assert_eq!(log.next_offset(), end);
    let info = log.append(&mut batch(1, 7), 1_000).expect("append");
    assert_eq!(
        info.base_offset, end,
        "the next offset follows the last one handed out"
    );
}

#[test]
fn garbage_in_an_offset_index_is_detected_and_rebuilt() {
    for (segment, at) in [(0usize, 0u64), (0, 40), (1, 8), (2, 0)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let end = cleanly_closed_log(dir.path(), 3);
        let index = &files(dir.path(), "index")[segment];
        let f = OpenOptions::new().write(true).open(index).expect("open");
        f.write_all_at(&garbage(256, at as u8), at).expect("tamper");
        assert_all_readable_and_offsets_continue(dir.path(), end);
    }
}

#[test]
fn garbage_in_a_time_index_is_detected_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let end = cleanly_closed_log(dir.path(), 2);
    let index = files(dir.path(), "timeindex")[0].clone();
    let f = OpenOptions::new().write(true).open(&index).expect("open");
    f.write_all_at(&garbage(24, 3), 0).expect("tamper");
    assert_all_readable_and_offsets_continue(dir.path(), end);
    let rebuilt = std::fs::read(&index).expect("read");
    assert_ne!(
        rebuilt.get(..24),
        Some(&garbage(24, 3)[..]),
        "the index was rebuilt"
    );
    let cfg = config(&[("index.interval.bytes", "256")]);
    let log = open(dir.path(), &cfg, true);
    let found = log
        .offset_for_timestamp(10)
        .expect("lookup")
        .expect("found");
    assert_eq!(
        found.offset, 31,
        "batch 7 (offsets 28..31) holds timestamps 7..10"
    );
}

#[test]
fn a_cut_log_tail_is_noticed_and_its_offsets_are_not_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let end = cleanly_closed_log(dir.path(), 1);
    let log_file = &files(dir.path(), "log")[0];
    let len = std::fs::metadata(log_file).expect("meta").len();
    OpenOptions::new()
        .write(true)
        .open(log_file)
        .expect("open")
        .set_len(len - 777)
        .expect("cut");
    let cfg = config(&[("index.interval.bytes", "256")]);
    let mut log = open(dir.path(), &cfg, true);
    let batches = read_all(&log, 0);
    let last = batches.last().expect("some batches survive").0;
    assert!(last + 4 < end, "the cut batches are gone");
    for (_, bytes) in &batches {
        runnel_storage::batch::validate(bytes).expect("only whole, valid batches are served");
    }
    let info = log.append(&mut batch(2, 9), 1_000).expect("append");
    assert_eq!(
        info.base_offset, end,
        "offsets that were handed out are never handed out again"
    );
    assert_eq!(read_all(&log, end).len(), 1, "the new batch reads back");
}

#[test]
fn garbage_appended_to_a_log_after_a_clean_stop_is_cut_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let end = cleanly_closed_log(dir.path(), 2);
    let log_file = &files(dir.path(), "log")[1];
    let len = std::fs::metadata(log_file).expect("meta").len();
    let f = OpenOptions::new().write(true).open(log_file).expect("open");
    f.write_all_at(&garbage(300, 1), len)
        .expect("append garbage");
    assert_all_readable_and_offsets_continue(dir.path(), end);
}

#[test]
fn unreadable_partition_metadata_means_verifying_every_segment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let end = cleanly_closed_log(dir.path(), 2);
    std::fs::write(dir.path().join("partition.json"), b"\xff{not json").expect("tamper");
    assert_all_readable_and_offsets_continue(dir.path(), end);
}
