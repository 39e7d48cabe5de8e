//! InitProducerId, the transaction APIs and the transaction listings.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_needs_the_transactional_id_or_an_idempotent_right() {
    let e = env();
    let idem = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let txn = idem
        .clone()
        .with_transactional_id(Some(TransactionalId(s("tx"))));
    assert_eq!(
        e.bob(4, &idem).await.error_code,
        code(ClusterAuthorizationFailed)
    );
    assert_eq!(
        e.bob(4, &txn).await.error_code,
        code(TransactionalIdAuthorizationFailed)
    );
    // WRITE on any topic, even one not created yet, is enough; a DENY covering it is not.
    e.acl(
        Rt::Topic,
        "orders-",
        PatternType::Prefixed,
        Op::Write,
        Permission::Allow,
    );
    e.acl(
        Rt::Topic,
        "ord",
        PatternType::Prefixed,
        Op::Write,
        Permission::Deny,
    );
    assert_eq!(
        e.bob(4, &idem).await.error_code,
        code(ClusterAuthorizationFailed)
    );
    e.acl(
        Rt::Topic,
        "logs",
        PatternType::Literal,
        Op::Write,
        Permission::Allow,
    );
    assert_eq!(e.bob(4, &idem).await.error_code, 0);
    let e = env();
    e.allow(Rt::Cluster, "kafka-cluster", Op::IdempotentWrite);
    assert_eq!(e.bob(4, &idem).await.error_code, 0);
    e.allow(Rt::TransactionalId, "tx", Op::Write);
    assert_eq!(e.bob(4, &txn).await.error_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_need_write_on_the_id_then_the_group_and_topics() {
    let e = env();
    e.topics(&["t", "u"]).await;
    let (xf, gf, tf) = (
        code(TransactionalIdAuthorizationFailed),
        code(GroupAuthorizationFailed),
        code(TopicAuthorizationFailed),
    );
    let id = TransactionalId(s("tx"));
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(id.clone())
        .with_v3_and_below_topics(
            ["t", "u"]
                .iter()
                .map(|t| {
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(topic(t))
                        .with_partitions(vec![0])
                })
                .collect(),
        );
    let add_codes = |r: AddPartitionsToTxnResponse| {
        let t = r.results_by_topic_v3_and_below.iter();
        t.map(|t| t.results_by_partition[0].partition_error_code)
            .collect::<Vec<_>>()
    };
    let offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(id.clone())
        .with_group_id(GroupId(s("g")));
    let end = EndTxnRequest::default().with_transactional_id(id.clone());
    let toc = TxnOffsetCommitRequest::default()
        .with_transactional_id(id.clone())
        .with_group_id(GroupId(s("g")))
        .with_topics(vec![
            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![Default::default()]),
        ]);
    let toc_code = |r: TxnOffsetCommitResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(add_codes(e.bob(3, &add).await), [xf, xf]);
    assert_eq!(e.bob(3, &offsets).await.error_code, xf);
    assert_eq!(e.bob(3, &end).await.error_code, xf);
    assert_eq!(toc_code(e.bob(3, &toc).await), xf);
    e.allow(Rt::TransactionalId, "tx", Op::Write);
    e.allow(Rt::Topic, "u", Op::Write);
    let not_attempted = code(OperationNotAttempted);
    assert_eq!(add_codes(e.bob(3, &add).await), [tf, not_attempted]);
    assert_eq!(e.bob(3, &offsets).await.error_code, gf);
    assert_eq!(toc_code(e.bob(3, &toc).await), gf);
    assert_ne!(e.bob(3, &end).await.error_code, xf);
    e.allow(Rt::Group, "g", Op::Read);
    assert_ne!(e.bob(3, &offsets).await.error_code, gf);
    assert_eq!(toc_code(e.bob(3, &toc).await), tf);
    e.allow(Rt::Topic, "t", Op::Read);
    e.allow(Rt::Topic, "t", Op::Write);
    // Past every check the coordinator answers: this producer never initialised the transaction.
    let after = [xf, gf, tf, not_attempted];
    assert!(!after.contains(&toc_code(e.bob(3, &toc).await)));
    assert!(add_codes(e.bob(3, &add).await)
        .iter()
        .all(|c| !after.contains(c)));
    // v4 comes from brokers only.
    let r = e.bob(4, &AddPartitionsToTxnRequest::default()).await;
    assert_eq!(r.error_code, code(ClusterAuthorizationFailed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_listings_show_only_describable_ids_and_topics() {
    let e = env();
    e.topics(&["t"]).await;
    for id in ["tx1", "tx2"] {
        let init = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s(id))))
            .with_transaction_timeout_ms(60_000);
        let r = e.admin(4, &init).await;
        let add = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s(id)))
            .with_v3_and_below_producer_id(r.producer_id)
            .with_v3_and_below_producer_epoch(r.producer_epoch)
            .with_v3_and_below_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![0]),
            ]);
        assert_eq!(
            e.admin(3, &add).await.results_by_topic_v3_and_below[0].results_by_partition[0]
                .partition_error_code,
            0
        );
    }
    let ids = |r: ListTransactionsResponse| {
        r.transaction_states
            .iter()
            .map(|t| t.transactional_id.to_string())
            .collect::<Vec<_>>()
    };
    assert!(ids(e.bob(1, &ListTransactionsRequest::default()).await).is_empty());
    e.acl(
        Rt::TransactionalId,
        "tx1",
        PatternType::Prefixed,
        Op::Describe,
        Permission::Allow,
    );
    assert_eq!(
        ids(e.bob(1, &ListTransactionsRequest::default()).await),
        ["tx1"]
    );
    let describe = DescribeTransactionsRequest::default()
        .with_transactional_ids(vec![TransactionalId(s("tx1")), TransactionalId(s("tx2"))]);
    let r = e.bob(0, &describe).await;
    let got: Vec<(i16, usize)> = r
        .transaction_states
        .iter()
        .map(|t| (t.error_code, t.topics.len()))
        .collect();
    assert_eq!(
        got,
        [(0, 0), (code(TransactionalIdAuthorizationFailed), 0)],
        "t is not describable"
    );
    e.allow(Rt::Topic, "t", Op::Describe);
    assert_eq!(
        e.bob(0, &describe).await.transaction_states[0].topics.len(),
        1
    );
}
