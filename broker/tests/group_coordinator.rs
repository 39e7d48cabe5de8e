//! The classic group protocol's state machine, driven directly: rebalances, fencing, the error codes Kafka
//! sends for bad requests, and durability of offsets across a reopen.
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use runnel_broker::groups::group::{JoinOutcome, SyncOutcome};
use runnel_broker::groups::{
    CommitEntry, CommitParams, GroupCoordinator, GroupSettings, JoinParams, Pending, SyncParams,
};

fn settings() -> GroupSettings {
    GroupSettings {
        min_session: Duration::from_millis(10),
        max_session: Duration::from_secs(300),
        initial_delay: Duration::ZERO,
        max_size: 3,
        offsets_retention_ms: 7 * 24 * 3600 * 1000,
        metadata_max_bytes: 4096,
    }
}

fn join(group: &str, member: &str, instance: Option<&str>) -> JoinParams {
    JoinParams {
        group_id: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: member.into(),
        instance_id: instance.map(String::from),
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), Bytes::from_static(b"sub"))],
        client_id: "test".into(),
        client_host: "/127.0.0.1".into(),
        version: 9,
    }
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn ready<T>(p: Pending<T>) -> T {
    match p {
        Pending::Ready(t) => t,
        Pending::Wait(_) => panic!("expected an immediate answer"),
    }
}

async fn answer<T>(p: Pending<T>) -> T {
    match p {
        Pending::Ready(t) => t,
        Pending::Wait(rx) => tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("answered in time")
            .expect("sender kept"),
    }
}

/// Joins a new dynamic member through the MEMBER_ID_REQUIRED round trip; returns the pending join.
fn join_new(c: &GroupCoordinator, group: &str) -> (String, Pending<JoinOutcome>) {
    let first = ready(c.join(join(group, "", None)));
    assert_eq!(first.error, code(ResponseError::MemberIdRequired));
    let id = first.member_id.clone();
    (id.clone(), c.join(join(group, &id, None)))
}

fn sync(
    c: &GroupCoordinator,
    group: &str,
    generation: i32,
    member: &str,
    assignments: Vec<(String, Bytes)>,
) -> Pending<SyncOutcome> {
    c.sync(SyncParams {
        group_id: group.into(),
        generation,
        member_id: member.into(),
        instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments,
    })
}

fn commit(c: &GroupCoordinator, group: &str, generation: i32, member: &str, offset: i64) -> i16 {
    let r = c.commit(
        CommitParams {
            group_id: group.into(),
            generation,
            member_id: member.into(),
            instance_id: None,
            topics: vec![(
                "t".into(),
                vec![CommitEntry {
                    partition: 0,
                    offset,
                    leader_epoch: -1,
                    metadata: Some("meta\u{1}data".into()),
                }],
            )],
        },
        |_, _| true,
    );
    r[0].1[0].1
}

#[tokio::test]
async fn two_members_rebalance_sync_and_a_third_triggers_a_new_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = GroupCoordinator::open(dir.path(), false, settings()).expect("open");
    let (a, ja) = join_new(&c, "g");
    let ja = answer(ja).await;
    assert_eq!(
        (ja.error, ja.generation, ja.leader.as_str()),
        (0, 1, a.as_str())
    );
    assert_eq!(ja.members.len(), 1, "the leader sees the members");
    let sa = answer(sync(
        &c,
        "g",
        1,
        &a,
        vec![(a.clone(), Bytes::from_static(b"A1"))],
    ))
    .await;
    assert_eq!(sa.assignment, Bytes::from_static(b"A1"));
    assert_eq!(c.heartbeat("g", 1, &a, None), 0);

    // A second member: the first learns of the rebalance through its heartbeat, then rejoins.
    let (b, jb) = join_new(&c, "g");
    assert_eq!(
        c.heartbeat("g", 1, &a, None),
        code(ResponseError::RebalanceInProgress)
    );
    let ja2 = c.join(join("g", &a, None));
    let (ja2, jb) = (answer(ja2).await, answer(jb).await);
    assert_eq!((ja2.generation, jb.generation), (2, 2));
    assert_eq!(ja2.leader, a, "the leader stays");
    assert!(jb.members.is_empty(), "followers do not see the members");
    // The follower's sync waits for the leader's.
    let sb = sync(&c, "g", 2, &b, vec![]);
    let sa = answer(sync(
        &c,
        "g",
        2,
        &a,
        vec![
            (a.clone(), Bytes::from_static(b"A2")),
            (b.clone(), Bytes::from_static(b"B2")),
        ],
    ))
    .await;
    assert_eq!(sa.assignment, Bytes::from_static(b"A2"));
    assert_eq!(answer(sb).await.assignment, Bytes::from_static(b"B2"));
    // A stale generation is fenced everywhere.
    assert_eq!(
        c.heartbeat("g", 1, &a, None),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        commit(&c, "g", 1, &a, 5),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(commit(&c, "g", 2, &a, 5), 0);
    assert_eq!(
        sync(&c, "g", 1, &b, vec![]).ready_error(),
        code(ResponseError::IllegalGeneration)
    );
    // group.max.size is 3: a fourth member is refused.
    let (_c3, _j) = join_new(&c, "g");
    let full = ready(c.join(join("g", "", None)));
    assert_eq!(full.error, code(ResponseError::GroupMaxSizeReached));
}

trait ReadyError {
    fn ready_error(self) -> i16;
}
impl ReadyError for Pending<SyncOutcome> {
    fn ready_error(self) -> i16 {
        ready(self).error
    }
}

#[tokio::test]
async fn bad_requests_get_kafkas_error_codes_and_leave_the_group_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = GroupCoordinator::open(dir.path(), false, settings()).expect("open");
    let mut empty = join("g", "", None);
    empty.protocols.clear();
    assert_eq!(
        ready(c.join(empty)).error,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let mut short = join("g", "", None);
    short.session_timeout_ms = 1;
    assert_eq!(
        ready(c.join(short)).error,
        code(ResponseError::InvalidSessionTimeout)
    );
    assert_eq!(
        c.heartbeat("nope", 1, "m", None),
        code(ResponseError::UnknownMemberId)
    );
    let (a, ja) = join_new(&c, "g");
    let ja = answer(ja).await;
    assert_eq!(
        sync(&c, "g", ja.generation, "stranger", vec![]).ready_error(),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        ready(c.join(join("g", "stranger", None))).error,
        code(ResponseError::UnknownMemberId)
    );
    // A stranger with an incompatible protocol type may not join.
    let mut stranger = join("g", "", None);
    stranger.protocol_type = "connect".into();
    assert_eq!(
        ready(c.join(stranger)).error,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let sa = answer(sync(
        &c,
        "g",
        ja.generation,
        &a,
        vec![(a.clone(), Bytes::from_static(b"x"))],
    ))
    .await;
    assert_eq!(sa.error, 0);
    assert_eq!(
        c.heartbeat("g", ja.generation, &a, None),
        0,
        "the group is unharmed"
    );
}

#[tokio::test]
async fn a_static_member_restarting_gets_its_assignment_back_without_a_rebalance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = GroupCoordinator::open(dir.path(), false, settings()).expect("open");
    let j = answer(c.join(join("s", "", Some("instance-1")))).await;
    let first = j.member_id.clone();
    answer(sync(
        &c,
        "s",
        j.generation,
        &first,
        vec![(first.clone(), Bytes::from_static(b"P0"))],
    ))
    .await;
    // The process restarts: same instance id, no member id.
    let again = ready(c.join(join("s", "", Some("instance-1"))));
    assert_eq!(again.error, 0);
    assert_eq!(again.generation, j.generation, "no new generation");
    assert_ne!(again.member_id, first);
    let s = answer(sync(&c, "s", again.generation, &again.member_id, vec![])).await;
    assert_eq!(s.assignment, Bytes::from_static(b"P0"));
    // The old incarnation is fenced.
    assert_eq!(
        c.heartbeat("s", j.generation, &first, Some("instance-1")),
        code(ResponseError::FencedInstanceId)
    );
}

#[tokio::test]
async fn a_silent_member_is_removed_after_its_session_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = GroupCoordinator::open(dir.path(), false, settings()).expect("open");
    let mut p = join("x", "", None);
    p.session_timeout_ms = 50;
    let first = ready(c.join(p));
    let mut p = join("x", &first.member_id, None);
    p.session_timeout_ms = 50;
    let j = answer(c.join(p)).await;
    answer(sync(&c, "x", j.generation, &j.member_id, vec![])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c.describe("x").is_some_and(|d| !d.members.is_empty()) {
        assert!(
            std::time::Instant::now() < deadline,
            "member expired in time"
        );
        c.tick();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        c.heartbeat("x", j.generation, &j.member_id, None),
        code(ResponseError::UnknownMemberId)
    );
}

#[tokio::test]
async fn committed_offsets_and_metadata_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let c = GroupCoordinator::open(dir.path(), false, settings()).expect("open");
        assert_eq!(
            commit(&c, "simple", -1, "", 42),
            0,
            "simple commit without membership"
        );
        assert_eq!(
            commit(&c, "nobody", 3, "m", 1),
            code(ResponseError::IllegalGeneration)
        );
    }
    let c = GroupCoordinator::open(dir.path(), false, settings()).expect("reopen");
    let found = c.fetch_offsets("simple", Some(vec![("t".into(), vec![0, 1])]));
    let o = found[0].1[0].1.clone().expect("committed");
    assert_eq!(o.offset, 42);
    assert_eq!(
        o.metadata.as_deref(),
        Some("meta\u{1}data"),
        "metadata byte for byte"
    );
    assert!(found[0].1[1].1.is_none());
    assert_eq!(c.delete_group("simple"), 0);
    assert_eq!(
        c.delete_group("simple"),
        code(ResponseError::GroupIdNotFound)
    );
}
