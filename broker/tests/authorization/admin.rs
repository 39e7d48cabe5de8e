//! Topic administration, configs and DescribeCluster.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_admin_needs_create_delete_alter() {
    let e = env();
    let tf = code(TopicAuthorizationFailed);
    let create = |n: &str| {
        CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(topic(n))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ])
    };
    let r = e.bob(7, &create("c1")).await;
    assert_eq!(
        (r.topics[0].error_code, r.topics[0].error_message.as_deref()),
        (tf, Some("Authorization failed."))
    );
    e.allow(Rt::Cluster, "kafka-cluster", Op::Create);
    let r = e.bob(7, &create("c1")).await;
    assert_eq!(
        (r.topics[0].error_code, r.topics[0].topic_config_error_code),
        (0, tf),
        "no configs shown"
    );
    assert_eq!(r.topics[0].configs.as_ref().map(Vec::len), Some(0));
    e.allow(Rt::Topic, "c2", Op::DescribeConfigs);
    let r = e.bob(7, &create("c2")).await;
    assert_eq!(r.topics[0].topic_config_error_code, 0);
    assert!(!r.topics[0].configs.as_ref().unwrap().is_empty());

    let grow = CreatePartitionsRequest::default().with_topics(vec![
        create_partitions_request::CreatePartitionsTopic::default()
            .with_name(topic("c1"))
            .with_count(2)
            .with_assignments(None),
    ]);
    assert_eq!(e.bob(3, &grow).await.results[0].error_code, tf);
    e.allow(Rt::Topic, "c1", Op::Alter);
    assert_eq!(e.bob(3, &grow).await.results[0].error_code, 0);

    let dr = DeleteRecordsRequest::default().with_topics(vec![
        delete_records_request::DeleteRecordsTopic::default()
            .with_name(topic("c1"))
            .with_partitions(vec![
                delete_records_request::DeleteRecordsPartition::default(),
            ]),
    ]);
    let dr_code = |r: DeleteRecordsResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(dr_code(e.bob(2, &dr).await), tf);

    let del = |n: &str| {
        DeleteTopicsRequest::default().with_topics(vec![
            delete_topics_request::DeleteTopicState::default().with_name(Some(topic(n))),
        ])
    };
    let del_code = |r: DeleteTopicsResponse| r.responses[0].error_code;
    assert_eq!(
        del_code(e.bob(6, &del("c1")).await),
        tf,
        "ALTER implies DESCRIBE, not DELETE"
    );
    assert_eq!(
        del_code(e.bob(6, &del("gone")).await),
        tf,
        "undescribable: existence not told"
    );
    e.allow(Rt::Topic, "gone", Op::Describe);
    assert_eq!(
        del_code(e.bob(6, &del("gone")).await),
        code(UnknownTopicOrPartition)
    );
    let id = e.broker.topic_meta("c2").unwrap().id;
    let by_id = DeleteTopicsRequest::default().with_topics(vec![
        delete_topics_request::DeleteTopicState::default().with_topic_id(id),
    ]);
    let r = e.bob(6, &by_id).await;
    assert_eq!(
        (r.responses[0].error_code, r.responses[0].name.is_none()),
        (tf, true)
    );
    e.allow(Rt::Topic, "c1", Op::Delete);
    assert_eq!(dr_code(e.bob(2, &dr).await), 0);
    assert_eq!(del_code(e.bob(6, &del("c1")).await), 0);
    assert!(e.broker.topic_meta("c1").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_need_describe_configs_and_alter_configs() {
    let e = env();
    e.topics(&["t"]).await;
    let res = |rt: i8, n: &str| {
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(rt)
            .with_resource_name(s(n))
    };
    let describe = DescribeConfigsRequest::default().with_resources(vec![res(2, "t"), res(4, "")]);
    let codes =
        |r: DescribeConfigsResponse| r.results.iter().map(|r| r.error_code).collect::<Vec<_>>();
    let (tf, cf) = (
        code(TopicAuthorizationFailed),
        code(ClusterAuthorizationFailed),
    );
    assert_eq!(codes(e.bob(4, &describe).await), [tf, cf]);
    e.allow(Rt::Topic, "t", Op::AlterConfigs);
    assert_eq!(
        codes(e.bob(4, &describe).await),
        [0, cf],
        "ALTER_CONFIGS implies DESCRIBE_CONFIGS"
    );
    e.allow(Rt::Cluster, "kafka-cluster", Op::DescribeConfigs);
    assert_eq!(codes(e.bob(4, &describe).await), [0, 0]);

    let set = |n: &str| {
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s(n))
            .with_configs(vec![
                incremental_alter_configs_request::AlterableConfig::default()
                    .with_name(s("retention.ms"))
                    .with_value(Some(s("1000"))),
            ])
    };
    let inc = IncrementalAlterConfigsRequest::default().with_resources(vec![set("t"), set("u")]);
    let r = e.bob(1, &inc).await;
    assert_eq!(
        r.responses.iter().map(|r| r.error_code).collect::<Vec<_>>(),
        [0, tf]
    );
    let legacy = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("")),
    ]);
    assert_eq!(e.bob(2, &legacy).await.responses[0].error_code, cf);
    e.allow(Rt::Cluster, "kafka-cluster", Op::AlterConfigs);
    // Past the check, the change itself is judged: clearing the cluster defaults is fine, a key that
    // cannot change while the broker runs is refused as Kafka refuses it.
    assert_eq!(e.bob(2, &legacy).await.responses[0].error_code, 0);
    let static_key = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s(""))
            .with_configs(vec![alter_configs_request::AlterableConfig::default()
                .with_name(s("num.partitions"))
                .with_value(Some(s("3")))]),
    ]);
    assert_eq!(
        e.bob(2, &static_key).await.responses[0].error_code,
        code(InvalidRequest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_cluster_answers_everyone_and_reports_cluster_operations() {
    let e = env();
    let asked = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let r = e.bob(1, &DescribeClusterRequest::default()).await;
    assert_eq!(
        (r.error_code, r.cluster_authorized_operations),
        (0, i32::MIN)
    );
    assert_eq!(e.bob(1, &asked).await.cluster_authorized_operations, 0);
    e.allow(Rt::Cluster, "kafka-cluster", Op::Alter);
    assert_eq!(
        e.bob(1, &asked).await.cluster_authorized_operations,
        1 << 7 | 1 << 8
    );
    // Every cluster operation Kafka lists: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, the configs, IDEMPOTENT_WRITE.
    let all = [5, 7, 8, 9, 10, 11, 12].iter().fold(0, |b, c| b | 1 << c);
    assert_eq!(e.admin(1, &asked).await.cluster_authorized_operations, all);
}
