//! Kafka's authorization checks, API by API, through the dispatcher as a client would meet them: with
//! `authorizer.class.name` set, `User:bob` is refused with Kafka's exact code until an ACL lets him in,
//! DENY wins over ALLOW, PREFIXED ACLs cover their prefix, and listings leave out what he may not see.
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::error::ResponseError::{self, *};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use runnel_broker::broker::Broker;
use runnel_broker::config::BrokerConfig;
use runnel_broker::dispatch::{dispatch, Caller};
use runnel_broker::request::Reply;
use runnel_broker::security::acl::{AclBinding, Operation, PatternType, Permission, ResourceType};
use runnel_broker::security::Principal;
use runnel_storage::builder::{BatchBuilder, Record};

use Operation as Op;
use ResourceType as Rt;

// One test binary, its tests by area: the crate root looks for modules beside it, hence the paths.
#[path = "authorization/admin.rs"]
mod admin;
#[path = "authorization/groups.rs"]
mod groups;
#[path = "authorization/txns.rs"]
mod txns;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

struct Env {
    _dir: tempfile::TempDir,
    broker: Broker,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = BrokerConfig::default();
    config.data_dir = dir.path().to_path_buf();
    for (k, v) in [
        ("authorizer.class.name", "runnel"),
        ("super.users", "User:admin"),
        ("group.initial.rebalance.delay.ms", "0"),
    ] {
        config.set(k, v).expect("config");
    }
    let broker = Broker::open(config, "127.0.0.1".into(), 9092).expect("broker");
    Env { _dir: dir, broker }
}

impl Env {
    async fn call<R: Request>(&self, who: &str, version: i16, req: &R) -> R::Response {
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(s("authz-test")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, R::header_version(version)).unwrap();
        req.encode(&mut buf, version).unwrap();
        let caller = Caller {
            peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
            listener: self.broker.internal_listener.clone(),
            principal: Arc::new(Principal::user(who)),
        };
        let (Reply::Frame(frame), _) = dispatch(&self.broker, buf.freeze(), &caller).await else {
            panic!("expected a response frame");
        };
        let mut body: Bytes = frame.slice(4..);
        ResponseHeader::decode(&mut body, R::Response::header_version(version)).unwrap();
        let resp = R::Response::decode(&mut body, version).unwrap();
        assert!(!body.has_remaining(), "the whole frame is the response");
        resp
    }

    async fn bob<R: Request>(&self, version: i16, req: &R) -> R::Response {
        self.call("bob", version, req).await
    }

    async fn admin<R: Request>(&self, version: i16, req: &R) -> R::Response {
        self.call("admin", version, req).await
    }

    fn acl(&self, rt: Rt, name: &str, pattern: PatternType, op: Op, permission: Permission) {
        self.broker
            .acls
            .add(vec![AclBinding {
                resource_type: rt,
                resource_name: name.into(),
                pattern_type: pattern,
                principal: "User:bob".into(),
                host: "*".into(),
                operation: op,
                permission,
            }])
            .expect("acl stored");
    }

    fn allow(&self, rt: Rt, name: &str, op: Op) {
        self.acl(rt, name, PatternType::Literal, op, Permission::Allow);
    }

    async fn topics(&self, names: &[&str]) {
        for n in names {
            self.broker
                .create_topic(n, 1, BTreeMap::new(), Default::default(), false)
                .await
                .expect("topic");
        }
    }
}

fn batch(transactional: bool) -> Bytes {
    let b = BatchBuilder {
        producer_id: if transactional { 1 } else { -1 },
        producer_epoch: if transactional { 0 } else { -1 },
        base_sequence: if transactional { 0 } else { -1 },
        transactional,
        ..Default::default()
    };
    let rec = Record {
        timestamp: 1,
        key: None,
        value: Some(b"v"),
        headers: &[],
    };
    Bytes::from(b.build(&[rec]))
}

fn produce(topics: &[&str], txn: Option<&str>, transactional: bool) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(1000)
        .with_transactional_id(txn.map(|t| TransactionalId(s(t))))
        .with_topic_data(
            topics
                .iter()
                .map(|t| {
                    produce_request::TopicProduceData::default()
                        .with_name(topic(t))
                        .with_partition_data(vec![produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch(transactional)))])
                })
                .collect(),
        )
}

fn produce_codes(r: &ProduceResponse) -> Vec<i16> {
    let p = r
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter());
    p.map(|p| p.error_code).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_needs_write_per_topic_and_on_the_transactional_id() {
    let e = env();
    e.topics(&["t", "u"]).await;
    let r = e.bob(9, &produce(&["t", "u"], None, false)).await;
    assert_eq!(produce_codes(&r), [code(TopicAuthorizationFailed); 2]);
    e.allow(Rt::Topic, "t", Op::Write);
    let r = e.bob(9, &produce(&["t", "u"], None, false)).await;
    assert_eq!(
        produce_codes(&r),
        [0, code(TopicAuthorizationFailed)],
        "t written, u not"
    );
    // Transactional records: the id is checked first and refuses the whole request.
    let r = e.bob(9, &produce(&["t"], Some("tx"), true)).await;
    assert_eq!(
        produce_codes(&r),
        [code(TransactionalIdAuthorizationFailed)]
    );
    let r = e.bob(9, &produce(&["t"], None, true)).await;
    assert_eq!(
        produce_codes(&r),
        [code(TransactionalIdAuthorizationFailed)],
        "no id at all"
    );
    e.allow(Rt::TransactionalId, "tx", Op::Write);
    let r = e.bob(9, &produce(&["t"], Some("tx"), true)).await;
    assert_ne!(
        produce_codes(&r),
        [code(TransactionalIdAuthorizationFailed)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_beats_allow_and_prefixed_acls_cover_their_prefix() {
    let e = env();
    e.topics(&["orders-1", "orders-2", "other"]).await;
    e.acl(
        Rt::Topic,
        "orders-",
        PatternType::Prefixed,
        Op::Write,
        Permission::Allow,
    );
    let r = e
        .bob(9, &produce(&["orders-1", "orders-2", "other"], None, false))
        .await;
    assert_eq!(produce_codes(&r), [0, 0, code(TopicAuthorizationFailed)]);
    e.acl(
        Rt::Topic,
        "orders-2",
        PatternType::Literal,
        Op::Write,
        Permission::Deny,
    );
    let r = e
        .bob(9, &produce(&["orders-1", "orders-2"], None, false))
        .await;
    assert_eq!(
        produce_codes(&r),
        [0, code(TopicAuthorizationFailed)],
        "DENY wins"
    );
    // A DENY on everything beats any ALLOW; the super user is not bound by ACLs.
    e.acl(
        Rt::Topic,
        "*",
        PatternType::Literal,
        Op::All,
        Permission::Deny,
    );
    let r = e.bob(9, &produce(&["orders-1"], None, false)).await;
    assert_eq!(produce_codes(&r), [code(TopicAuthorizationFailed)]);
    let r = e.admin(9, &produce(&["orders-1"], None, false)).await;
    assert_eq!(produce_codes(&r), [0]);
    let r = e.bob(3, &ApiVersionsRequest::default()).await;
    assert_eq!(r.error_code, 0, "ApiVersions needs nothing");
}

fn fetch(names: &[&str], ids: &[uuid::Uuid], replica: i32) -> FetchRequest {
    let part = fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20);
    let named = names
        .iter()
        .map(|n| fetch_request::FetchTopic::default().with_topic(topic(n)));
    let by_id = ids
        .iter()
        .map(|i| fetch_request::FetchTopic::default().with_topic_id(*i));
    let topics = named
        .chain(by_id)
        .map(|t| t.with_partitions(vec![part.clone()]))
        .collect();
    FetchRequest::default()
        .with_replica_id(BrokerId(replica))
        .with_max_wait_ms(0)
        .with_topics(topics)
}

fn fetch_codes(r: &FetchResponse) -> Vec<i16> {
    let p = r.responses.iter().flat_map(|t| t.partitions.iter());
    p.map(|p| p.error_code).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_needs_read_and_followers_need_cluster_action() {
    let e = env();
    e.topics(&["t", "u"]).await;
    let id = e.broker.topic_meta("t").unwrap().id;
    let tf = code(TopicAuthorizationFailed);
    assert_eq!(
        fetch_codes(&e.bob(12, &fetch(&["t", "nope"], &[], -1)).await),
        [tf, tf]
    );
    let unknown = uuid::Uuid::from_u128(42);
    let r = e.bob(13, &fetch(&[], &[id, unknown], -1)).await;
    assert_eq!(fetch_codes(&r), [tf, code(UnknownTopicId)]);
    e.allow(Rt::Topic, "t", Op::Read);
    assert_eq!(
        fetch_codes(&e.bob(12, &fetch(&["t", "u"], &[], -1)).await),
        [0, tf]
    );
    assert_eq!(fetch_codes(&e.bob(13, &fetch(&[], &[id], -1)).await), [0]);
    // A replica id makes it a follower's fetch: READ does not count, CLUSTER_ACTION does.
    assert_eq!(fetch_codes(&e.bob(12, &fetch(&["t"], &[], 1)).await), [tf]);
    e.allow(Rt::Cluster, "kafka-cluster", Op::ClusterAction);
    assert_eq!(
        fetch_codes(&e.bob(12, &fetch(&["t", "u"], &[], 1)).await),
        [0, 0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_lookups_need_describe_and_describe_producers_read() {
    let e = env();
    e.topics(&["t"]).await;
    let tf = code(TopicAuthorizationFailed);
    let lo = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(topic("t"))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)
            ]),
    ]);
    let ole = OffsetForLeaderEpochRequest::default().with_topics(vec![
        offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
            .with_topic(topic("t"))
            .with_partitions(vec![Default::default()]),
    ]);
    let dp = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(topic("t"))
            .with_partition_indexes(vec![0]),
    ]);
    let lo_code = |r: ListOffsetsResponse| r.topics[0].partitions[0].error_code;
    let ole_code = |r: OffsetForLeaderEpochResponse| r.topics[0].partitions[0].error_code;
    let dp_code = |r: DescribeProducersResponse| r.topics[0].partitions[0].error_code;
    assert_eq!(lo_code(e.bob(7, &lo).await), tf);
    assert_eq!(ole_code(e.bob(4, &ole).await), tf);
    assert_eq!(dp_code(e.bob(0, &dp).await), tf);
    e.allow(Rt::Topic, "t", Op::Describe);
    assert_eq!(lo_code(e.bob(7, &lo).await), 0);
    assert_eq!(ole_code(e.bob(4, &ole).await), 0);
    assert_eq!(
        dp_code(e.bob(0, &dp).await),
        tf,
        "DescribeProducers wants READ"
    );
    e.allow(Rt::Topic, "t", Op::Read);
    assert_eq!(dp_code(e.bob(0, &dp).await), 0);
}

fn metadata(names: Option<&[&str]>) -> MetadataRequest {
    let topics = names.map(|ns| {
        ns.iter()
            .map(|n| metadata_request::MetadataRequestTopic::default().with_name(Some(topic(n))))
            .collect()
    });
    MetadataRequest::default().with_topics(topics)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_hides_topics_without_describe_and_auto_creation_needs_create() {
    let e = env();
    e.topics(&["a", "b"]).await;
    e.allow(Rt::Topic, "a", Op::Read);
    let listed = |r: &MetadataResponse| -> Vec<(Option<String>, i16)> {
        let t = r.topics.iter();
        t.map(|t| (t.name.as_ref().map(|n| n.to_string()), t.error_code))
            .collect()
    };
    let all = e.bob(12, &metadata(None)).await;
    assert_eq!(listed(&all), [(Some("a".into()), 0)], "b is left out");
    assert_eq!(
        all.topics[0].topic_authorized_operations,
        i32::MIN,
        "not asked for"
    );
    let r = e.bob(1, &metadata(Some(&["a", "b"]))).await;
    assert_eq!(
        listed(&r)[1],
        (Some("b".into()), code(TopicAuthorizationFailed))
    );
    assert!(
        e.admin(0, &metadata(Some(&[]))).await.topics.len() == 2,
        "v0 empty list is all"
    );
    // READ implies DESCRIBE: the bits Kafka's AclOperation codes name.
    let ops = e
        .bob(
            12,
            &metadata(None).with_include_topic_authorized_operations(true),
        )
        .await;
    assert_eq!(ops.topics[0].topic_authorized_operations, 1 << 3 | 1 << 8);
    let cluster = metadata(None).with_include_cluster_authorized_operations(true);
    assert_eq!(e.bob(10, &cluster).await.cluster_authorized_operations, 0);
    e.allow(Rt::Cluster, "kafka-cluster", Op::Describe);
    assert_eq!(
        e.bob(10, &cluster).await.cluster_authorized_operations,
        1 << 8
    );
    // By id, a refused topic keeps its id but not its name.
    let id = e.broker.topic_meta("b").unwrap().id;
    let by_id = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default()
            .with_name(None)
            .with_topic_id(id),
    ]));
    let r = e.bob(12, &by_id).await;
    assert_eq!(
        (r.topics[0].name.is_none(), r.topics[0].topic_id),
        (true, id)
    );
    assert_eq!(r.topics[0].error_code, code(TopicAuthorizationFailed));
    // Auto-creation: DESCRIBE lets bob see the answer, only CREATE lets the topic be made.
    e.allow(Rt::Topic, "new", Op::Describe);
    let auto = metadata(Some(&["new"])).with_allow_auto_topic_creation(true);
    assert_eq!(
        e.bob(12, &auto).await.topics[0].error_code,
        code(TopicAuthorizationFailed)
    );
    assert!(e.broker.topic_meta("new").is_none());
    e.allow(Rt::Topic, "new", Op::Create);
    assert_eq!(e.bob(12, &auto).await.topics[0].error_code, 0);
    assert!(e.broker.topic_meta("new").is_some());
}
