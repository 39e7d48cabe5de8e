//! Protocol behaviour of the real binary that client libraries hide: ordering of pipelined responses, the
//! fetch long poll, KIP-74 oversized batches, and refusal of versions Kafka 4 no longer serves.

mod support;

use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use runnel_storage::builder::{BatchBuilder, Record};
use support::Runnel;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create_topic(conn: &mut support::Conn, topic: &str, partitions: i32) -> Result<()> {
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(5000);
    let resp: CreateTopicsResponse = conn.call(ApiKey::CreateTopics, 7, &req)?;
    assert_eq!(
        resp.topics[0].error_code, 0,
        "{:?}",
        resp.topics[0].error_message
    );
    Ok(())
}

fn produce_request(topic: &str, partition: i32, batch: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(batch)))])])
}

fn batch_of(value: &[u8]) -> Vec<u8> {
    BatchBuilder::default().build(&[Record {
        timestamp: 1,
        key: None,
        value: Some(value),
        headers: &[],
    }])
}

fn fetch_request(topic: &str, offset: i64, max_wait_ms: i32, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(max_bytes)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(max_bytes)])])
}

#[test]
fn pipelined_requests_are_answered_in_order() -> Result<()> {
    let broker = Runnel::start(&[])?;
    let mut conn = broker.connect()?;
    let a = conn.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())?;
    let b = conn.send(ApiKey::Metadata, 12, &MetadataRequest::default())?;
    let c = conn.send(ApiKey::ApiVersions, 0, &ApiVersionsRequest::default())?;
    let _: ApiVersionsResponse = conn.receive(ApiKey::ApiVersions, 3, a)?;
    let _: MetadataResponse = conn.receive(ApiKey::Metadata, 12, b)?;
    let v0: ApiVersionsResponse = conn.receive(ApiKey::ApiVersions, 0, c)?;
    assert!(v0
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::Produce as i16 && k.min_version == 0));
    Ok(())
}

#[test]
fn a_waiting_fetch_wakes_when_another_connection_produces() -> Result<()> {
    let broker = Runnel::start(&[])?;
    let mut admin = broker.connect()?;
    create_topic(&mut admin, "wake", 1)?;
    let mut consumer = broker.connect()?;
    // Longer than the read timeout: only a wake-up on append can answer in time.
    consumer
        .stream
        .set_read_timeout(Some(Duration::from_secs(10)))?;
    let c = consumer.send(
        ApiKey::Fetch,
        12,
        &fetch_request("wake", 0, 30_000, 1 << 20),
    )?;
    std::thread::sleep(Duration::from_millis(200)); // let the fetch start waiting; correctness does not depend on it
    let resp: ProduceResponse = admin.call(
        ApiKey::Produce,
        9,
        &produce_request("wake", 0, batch_of(b"hello")),
    )?;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let fetched: FetchResponse = consumer.receive(ApiKey::Fetch, 12, c)?;
    let p = &fetched.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 1);
    assert!(
        p.records.as_ref().is_some_and(|r| !r.is_empty()),
        "the fetch returned the new record"
    );
    Ok(())
}

#[test]
fn a_batch_larger_than_max_bytes_is_still_returned_whole() -> Result<()> {
    let broker = Runnel::start(&[])?;
    let mut conn = broker.connect()?;
    create_topic(&mut conn, "big", 1)?;
    let value = vec![7u8; 10_000];
    let batch = batch_of(&value);
    let _: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request("big", 0, batch.clone()),
    )?;
    let _: ProduceResponse = conn.call(
        ApiKey::Produce,
        9,
        &produce_request("big", 0, batch.clone()),
    )?;
    let fetched: FetchResponse = conn.call(ApiKey::Fetch, 12, &fetch_request("big", 0, 0, 100))?;
    let records = fetched.responses[0].partitions[0]
        .records
        .clone()
        .unwrap_or_default();
    assert_eq!(records.len(), batch.len(), "exactly the first whole batch");
    runnel_storage::batch::validate(&records)?;
    Ok(())
}

#[test]
fn produce_versions_before_3_get_unsupported_version() -> Result<()> {
    let broker = Runnel::start(&[])?;
    let mut conn = broker.connect()?;
    // Produce v2, hand-encoded: header v1, acks, timeout, one topic with one partition and an empty record set.
    let mut frame = Vec::new();
    frame.extend_from_slice(&0i16.to_be_bytes());
    frame.extend_from_slice(&2i16.to_be_bytes());
    frame.extend_from_slice(&77i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame.extend_from_slice(&1i16.to_be_bytes());
    frame.extend_from_slice(&1000i32.to_be_bytes());
    frame.extend_from_slice(&1i32.to_be_bytes());
    frame.extend_from_slice(&3i16.to_be_bytes());
    frame.extend_from_slice(b"old");
    frame.extend_from_slice(&1i32.to_be_bytes());
    frame.extend_from_slice(&0i32.to_be_bytes());
    frame.extend_from_slice(&0i32.to_be_bytes());
    conn.send_raw(&frame)?;
    let resp = conn.read_frame()?;
    assert_eq!(&resp[0..4], &77i32.to_be_bytes(), "correlation id");
    // topics(1) name("old") partitions(1) partition(0) error_code
    let error_at = 4 + 4 + 2 + 3 + 4 + 4;
    assert_eq!(i16::from_be_bytes([resp[error_at], resp[error_at + 1]]), 35);
    Ok(())
}

#[test]
fn a_forged_array_count_closes_only_that_connection() -> Result<()> {
    let mut broker = Runnel::start(&[])?;
    let mut conn = broker.connect()?;
    // Metadata v1 whose topic array claims two billion entries but holds none.
    let mut frame = Vec::new();
    frame.extend_from_slice(&3i16.to_be_bytes());
    frame.extend_from_slice(&1i16.to_be_bytes());
    frame.extend_from_slice(&5i32.to_be_bytes());
    frame.extend_from_slice(&(-1i16).to_be_bytes());
    frame.extend_from_slice(&2_000_000_000i32.to_be_bytes());
    conn.send_raw(&frame)?;
    assert!(conn.is_closed());
    assert!(broker.is_running());
    let mut other = broker.connect()?;
    let _: ApiVersionsResponse =
        other.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())?;
    Ok(())
}

#[test]
fn describe_producers_reports_idempotent_producer_state() -> Result<()> {
    let broker = Runnel::start(&[])?;
    let mut conn = broker.connect()?;
    create_topic(&mut conn, "prod", 1)?;
    let init: InitProducerIdResponse = conn.call(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(i32::MAX)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    )?;
    assert_eq!(init.error_code, 0);
    let pid = init.producer_id.0;
    for seq in [0, 3] {
        let values: Vec<Vec<u8>> = (0..3).map(|i| format!("v{i}").into_bytes()).collect();
        let recs: Vec<Record> = values
            .iter()
            .map(|v| Record {
                timestamp: 1,
                key: None,
                value: Some(v),
                headers: &[],
            })
            .collect();
        let batch = BatchBuilder {
            producer_id: pid,
            producer_epoch: init.producer_epoch,
            base_sequence: seq,
            ..Default::default()
        }
        .build(&recs);
        let resp: ProduceResponse =
            conn.call(ApiKey::Produce, 9, &produce_request("prod", 0, batch))?;
        assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    }
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    let resp: DescribeProducersResponse = conn.call(
        ApiKey::DescribeProducers,
        0,
        &DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
            .with_name(name("prod"))
            .with_partition_indexes(vec![0])]),
    )?;
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let state = p
        .active_producers
        .iter()
        .find(|s| s.producer_id.0 == pid)
        .expect("the producer is listed");
    assert_eq!(state.last_sequence, 5, "sequences 0-2 then 3-5");
    assert_eq!(state.current_txn_start_offset, -1, "no open transaction");
    Ok(())
}
