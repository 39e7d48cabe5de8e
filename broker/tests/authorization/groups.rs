//! FindCoordinator, the group protocol, offsets and the group listings.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_coordinator_needs_describe_per_key() {
    let e = env();
    let old = |kt: i8| {
        FindCoordinatorRequest::default()
            .with_key(s("g"))
            .with_key_type(kt)
    };
    let r = e.bob(3, &old(0)).await;
    assert_eq!(
        (r.error_code, r.node_id.0),
        (code(GroupAuthorizationFailed), -1)
    );
    assert_eq!(
        e.bob(3, &old(1)).await.error_code,
        code(TransactionalIdAuthorizationFailed)
    );
    e.allow(Rt::Group, "g", Op::Describe);
    e.allow(Rt::TransactionalId, "g", Op::Describe);
    assert_eq!(e.bob(3, &old(0)).await.error_code, 0);
    assert_eq!(e.bob(3, &old(1)).await.error_code, 0);
    let batched = FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g"), s("h")]);
    let r = e.bob(4, &batched).await;
    let codes: Vec<i16> = r.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, [0, code(GroupAuthorizationFailed)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_membership_needs_read_on_the_group() {
    let e = env();
    let gf = code(GroupAuthorizationFailed);
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))]);
    let r = e.bob(9, &join).await;
    assert_eq!(
        (r.error_code, r.generation_id, r.protocol_name.is_none()),
        (gf, -1, true)
    );
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")));
    assert_eq!(e.bob(5, &sync).await.error_code, gf);
    let hb = HeartbeatRequest::default().with_group_id(GroupId(s("g")));
    assert_eq!(e.bob(4, &hb).await.error_code, gf);
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_members(vec![
            leave_group_request::MemberIdentity::default().with_member_id(s("m"))
        ]);
    let r = e.bob(5, &leave).await;
    assert_eq!((r.error_code, r.members.len()), (gf, 0));
    e.allow(Rt::Group, "g", Op::Read);
    assert_eq!(e.bob(9, &join).await.error_code, code(MemberIdRequired));
    assert_eq!(e.bob(4, &hb).await.error_code, code(UnknownMemberId));
    assert_eq!(e.bob(5, &sync).await.error_code, code(UnknownMemberId));
    let r = e.bob(5, &leave).await;
    assert_eq!(
        (r.error_code, r.members.len()),
        (0, 1),
        "answered per member"
    );
}

fn commit(group: &str, topics: &[&str]) -> OffsetCommitRequest {
    let part =
        offset_commit_request::OffsetCommitRequestPartition::default().with_committed_offset(5);
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(
            topics
                .iter()
                .map(|t| {
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic(t))
                        .with_partitions(vec![part.clone()])
                })
                .collect(),
        )
}

fn commit_codes(r: &OffsetCommitResponse) -> Vec<i16> {
    r.topics
        .iter()
        .map(|t| t.partitions[0].error_code)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_need_the_group_and_each_topic() {
    let e = env();
    e.topics(&["t", "u"]).await;
    let (gf, tf) = (
        code(GroupAuthorizationFailed),
        code(TopicAuthorizationFailed),
    );
    assert_eq!(
        commit_codes(&e.bob(8, &commit("g", &["t", "u"])).await),
        [gf, gf]
    );
    e.allow(Rt::Group, "g", Op::Read);
    assert_eq!(
        commit_codes(&e.bob(8, &commit("g", &["t", "u"])).await),
        [tf, tf]
    );
    e.allow(Rt::Topic, "t", Op::Read);
    let r = e.bob(8, &commit("g", &["t", "u"])).await;
    let by_name: BTreeMap<String, i16> = r
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.partitions[0].error_code))
        .collect();
    assert_eq!(by_name, BTreeMap::from([("t".into(), 0), ("u".into(), tf)]));
    assert_eq!(commit_codes(&e.admin(8, &commit("g", &["u"])).await), [0]);

    let group = |topics: Option<&[&str]>| {
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(s("g")))
            .with_topics(topics.map(|ts| {
                ts.iter()
                    .map(|t| {
                        offset_fetch_request::OffsetFetchRequestTopics::default()
                            .with_name(topic(t))
                            .with_partition_indexes(vec![0])
                    })
                    .collect()
            }))
    };
    let fetch = |topics| OffsetFetchRequest::default().with_groups(vec![group(topics)]);
    let other = OffsetFetchRequest::default().with_group_id(GroupId(s("other")));
    assert_eq!(
        e.bob(7, &other).await.error_code,
        gf,
        "v7: a top-level code"
    );
    let r = e.bob(9, &fetch(Some(&["t", "u"]))).await;
    let found: Vec<(String, i64, i16)> = r.groups[0]
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions[0].committed_offset,
                t.partitions[0].error_code,
            )
        })
        .collect();
    assert_eq!(
        found,
        [("t".into(), 5, 0), ("u".into(), -1, tf)],
        "READ on g implies DESCRIBE"
    );
    let all = e.bob(9, &fetch(None)).await;
    let names: Vec<String> = all.groups[0]
        .topics
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    assert_eq!(names, ["t"], "u's offset is left out");

    let del = OffsetDeleteRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![
            offset_delete_request::OffsetDeleteRequestTopic::default()
                .with_name(topic("u"))
                .with_partitions(vec![Default::default()]),
        ]);
    assert_eq!(e.bob(0, &del).await.error_code, gf, "DELETE on the group");
    e.allow(Rt::Group, "g", Op::Delete);
    let r = e.bob(0, &del).await;
    assert_eq!(
        (r.error_code, r.topics[0].partitions[0].error_code),
        (0, tf)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_listings_show_only_describable_groups() {
    let e = env();
    e.topics(&["t"]).await;
    for g in ["g1", "g2"] {
        assert_eq!(commit_codes(&e.admin(8, &commit(g, &["t"])).await), [0]);
    }
    let ids = |r: ListGroupsResponse| {
        r.groups
            .iter()
            .map(|g| g.group_id.to_string())
            .collect::<Vec<_>>()
    };
    assert!(ids(e.bob(4, &ListGroupsRequest::default()).await).is_empty());
    e.allow(Rt::Group, "g1", Op::Describe);
    assert_eq!(ids(e.bob(4, &ListGroupsRequest::default()).await), ["g1"]);

    let describe = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(s("g1")), GroupId(s("g2"))])
        .with_include_authorized_operations(true);
    let r = e.bob(5, &describe).await;
    let got: Vec<(i16, i32)> = r
        .groups
        .iter()
        .map(|g| (g.error_code, g.authorized_operations))
        .collect();
    assert_eq!(
        got,
        [(0, 1 << 8), (code(GroupAuthorizationFailed), i32::MIN)]
    );

    let delete =
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g2")), GroupId(s("g1"))]);
    let r = e.bob(2, &delete).await;
    let got: Vec<(String, i16)> = r
        .results
        .iter()
        .map(|g| (g.group_id.to_string(), g.error_code))
        .collect();
    assert_eq!(
        got,
        [
            ("g2".into(), code(GroupAuthorizationFailed)),
            ("g1".into(), code(GroupAuthorizationFailed))
        ]
    );
    e.allow(Rt::Group, "g1", Op::Delete);
    assert_eq!(
        e.bob(2, &delete).await.results[0].group_id.to_string(),
        "g1",
        "refused ones come last"
    );
    e.allow(Rt::Cluster, "kafka-cluster", Op::Describe);
    assert_eq!(
        ids(e.bob(4, &ListGroupsRequest::default()).await),
        ["g2"],
        "cluster DESCRIBE lists all"
    );
}
