//! Transaction state of a partition: the last stable offset, read_committed bounds and the aborted index,
//! across clean and unclean restarts.

mod support;

use runnel_storage::builder::{BatchBuilder, Record};
use runnel_storage::log::marker_batch;
use support::{batch, config, open};

fn txn_batch(pid: i64, seq: i32, n: usize) -> Vec<u8> {
    let values: Vec<String> = (0..n).map(|i| format!("t{pid}-{seq}-{i}")).collect();
    let recs: Vec<Record> = values
        .iter()
        .map(|v| Record {
            timestamp: 1,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        })
        .collect();
    BatchBuilder {
        producer_id: pid,
        producer_epoch: 0,
        base_sequence: seq,
        transactional: true,
        ..Default::default()
    }
    .build(&recs)
}

#[test]
fn open_transactions_hold_back_the_last_stable_offset_and_aborts_are_indexed() {
    let cfg = config(&[]);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut log = open(dir.path(), &cfg, false);
        log.append(&mut batch(2, 0), 1).expect("plain"); // 0-1
        log.append(&mut txn_batch(7, 0, 3), 1).expect("txn 7"); // 2-4
        assert_eq!(log.last_stable_offset(), 2);
        log.append(&mut txn_batch(8, 0, 2), 1).expect("txn 8"); // 5-6
        log.append(&mut batch(1, 0), 1).expect("plain"); // 7
        assert_eq!(log.high_watermark(), 8);
        assert_eq!(log.last_stable_offset(), 2);
        // read_committed stops before the open transaction.
        let plan = log.read(0, true).expect("read");
        let bytes = plan.slice.expect("slice").read(1 << 20).expect("bytes");
        let h = runnel_storage::batch::validate(&bytes).expect("one batch");
        assert_eq!((h.base_offset, bytes.len()), (0, h.total_len()));
        assert!(
            log.read(2, true).expect("read").slice.is_none(),
            "nothing stable at 2 yet"
        );
        log.append(&mut marker_batch(7, 0, false, 0, 1), 1)
            .expect("abort 7"); // 8
        assert_eq!(log.last_stable_offset(), 5, "8's transaction still open");
        log.append(&mut marker_batch(8, 0, true, 0, 1), 1)
            .expect("commit 8"); // 9
        assert_eq!(log.last_stable_offset(), 10);
        let plan = log.read(0, true).expect("read");
        assert_eq!(plan.aborted.len(), 1);
        assert_eq!(
            (
                plan.aborted[0].producer_id,
                plan.aborted[0].first_offset,
                plan.aborted[0].last_offset
            ),
            (7, 2, 8)
        );
        // A transaction left open across a crash stays open after recovery.
        log.append(&mut txn_batch(9, 0, 1), 1).expect("txn 9"); // 10
    }
    for clean in [false, true] {
        let mut log = open(dir.path(), &cfg, clean);
        assert_eq!(log.last_stable_offset(), 10, "clean={clean}");
        let aborted = log.read(0, true).expect("read").aborted;
        assert_eq!(aborted.len(), 1, "clean={clean}");
        if !clean {
            log.close().expect("close");
        }
    }
    let mut log = open(dir.path(), &cfg, true);
    log.append(&mut marker_batch(9, 0, false, 0, 1), 1)
        .expect("abort 9");
    assert_eq!(log.last_stable_offset(), log.high_watermark());
    assert_eq!(log.read(0, true).expect("read").aborted.len(), 2);
}
