//! The transaction coordinator's state machine: epochs and fencing, the two-phase end, timeouts, and
//! recovery of a half-ended transaction after a restart.

use kafka_protocol::error::ResponseError;
use runnel_broker::transactions::{InitOutcome, TxnCoordinator, TxnSettings, TxnStatus};

fn settings() -> TxnSettings {
    TxnSettings {
        max_timeout_ms: 60_000,
    }
}

fn init(c: &TxnCoordinator, id: &str, timeout: i32, next: i64) -> Result<(i64, i16), i16> {
    match c.init(id, timeout, || Some(next))? {
        InitOutcome::Ready {
            producer_id,
            producer_epoch,
        } => Ok((producer_id, producer_epoch)),
        InitOutcome::AbortFirst(_) => panic!("no transaction to abort"),
    }
}

const FENCED: i16 = 90;

#[test]
fn epochs_fence_older_producers_and_timeouts_are_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = TxnCoordinator::open(dir.path(), false, settings()).expect("open");
    assert_eq!(
        init(&c, "t", 60_001, 1),
        Err(ResponseError::InvalidTransactionTimeout.code())
    );
    assert_eq!(
        init(&c, "t", 0, 1),
        Err(ResponseError::InvalidTransactionTimeout.code())
    );
    let (pid, e0) = init(&c, "t", 10_000, 7).expect("init");
    assert_eq!((pid, e0), (7, 0));
    let (pid2, e1) = init(&c, "t", 10_000, 99).expect("re-init");
    assert_eq!((pid2, e1), (7, 1), "same producer id, bumped epoch");
    let parts = vec![("topic".to_string(), 0)];
    assert_eq!(
        c.add("t", pid, e0, FENCED, &parts, None),
        Err(FENCED),
        "old epoch fenced"
    );
    assert_eq!(
        c.add("t", 8, e1, FENCED, &parts, None),
        Err(ResponseError::InvalidProducerIdMapping.code())
    );
    assert_eq!(
        c.add("nope", pid, e1, FENCED, &parts, None),
        Err(ResponseError::InvalidProducerIdMapping.code())
    );
    c.add("t", pid, e1, FENCED, &parts, Some("group"))
        .expect("add");
    assert_eq!(c.describe("t").expect("known").state, TxnStatus::Ongoing);
}

#[test]
fn ending_is_two_phase_idempotent_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = TxnCoordinator::open(dir.path(), false, settings()).expect("open");
    let (pid, e) = init(&c, "t", 10_000, 3).expect("init");
    assert_eq!(
        c.prepare_end("t", pid, e, FENCED, true).err(),
        Some(ResponseError::InvalidTxnState.code()),
        "nothing to end"
    );
    c.add(
        "t",
        pid,
        e,
        FENCED,
        &[("a".into(), 0), ("b".into(), 1)],
        Some("g"),
    )
    .expect("add");
    let plan = c
        .prepare_end("t", pid, e, FENCED, true)
        .expect("prepare")
        .expect("a plan");
    assert!(plan.commit);
    assert_eq!(plan.partitions.len(), 2);
    assert_eq!(plan.groups, vec!["g".to_string()]);
    assert_eq!(
        c.prepare_end("t", pid, e, FENCED, true).err(),
        Some(ResponseError::ConcurrentTransactions.code())
    );
    c.finish_end(&plan).expect("finish");
    assert_eq!(
        c.describe("t").expect("known").state,
        TxnStatus::CompleteCommit
    );
    assert!(
        c.prepare_end("t", pid, e, FENCED, true)
            .expect("retry")
            .is_none(),
        "a retried commit is a no-op"
    );
    assert_eq!(
        c.prepare_end("t", pid, e, FENCED, false).err(),
        Some(ResponseError::InvalidTxnState.code())
    );
}

#[test]
fn an_expired_transaction_is_aborted_with_a_fencing_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = TxnCoordinator::open(dir.path(), false, settings()).expect("open");
    let (pid, e) = init(&c, "t", 1, 3).expect("init");
    c.add("t", pid, e, FENCED, &[("a".into(), 0)], None)
        .expect("add");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let plans = loop {
        let plans = c.expire();
        if !plans.is_empty() {
            break plans;
        }
        assert!(std::time::Instant::now() < deadline, "expired in time");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(!plans[0].commit);
    assert_eq!(plans[0].marker_epoch, e + 1, "markers carry a bumped epoch");
    c.finish_end(&plans[0]).expect("finish");
    assert_eq!(
        c.add("t", pid, e, FENCED, &[("a".into(), 0)], None),
        Err(FENCED),
        "the zombie is fenced"
    );
}

#[test]
fn a_half_ended_transaction_is_found_again_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let c = TxnCoordinator::open(dir.path(), false, settings()).expect("open");
        let (pid, e) = init(&c, "t", 10_000, 3).expect("init");
        c.add("t", pid, e, FENCED, &[("a".into(), 0)], None)
            .expect("add");
        c.prepare_end("t", pid, e, FENCED, false)
            .expect("prepare")
            .expect("plan");
        // crash before finish_end
    }
    let c = TxnCoordinator::open(dir.path(), false, settings()).expect("reopen");
    let unfinished = c.unfinished();
    assert_eq!(unfinished.len(), 1);
    assert!(!unfinished[0].commit);
    assert_eq!(unfinished[0].partitions, vec![("a".to_string(), 0)]);
    // A new producer instance meanwhile waits for it.
    assert_eq!(
        init(&c, "t", 10_000, 5),
        Err(ResponseError::ConcurrentTransactions.code())
    );
    c.finish_end(&unfinished[0]).expect("finish");
    assert_eq!(init(&c, "t", 10_000, 5).expect("init").1, 1);
}
