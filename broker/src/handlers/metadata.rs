//! Metadata: brokers (just this one), topics with their stable IDs, and partitions all led by this node.
//! Asking for a missing topic creates it when the client allows it and `auto.create.topics.enable` is on.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use runnel_storage::TopicMeta;

use super::{str_bytes, topic_name, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

/// Kafka's "authorized operations not requested" marker.
const OPS_NOT_REQUESTED: i32 = i32::MIN;

pub fn topic_entry(broker: &Broker, meta: &TopicMeta, version: i16) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id);
    let partitions = (0..meta.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(topic_name(&meta.name)))
        .with_is_internal(meta.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPS_NOT_REQUESTED);
    if version >= 10 {
        t.topic_id = meta.id;
    }
    t
}

fn missing(name: Option<&str>, id: uuid::Uuid, code: i16, version: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(topic_name))
        .with_topic_authorized_operations(OPS_NOT_REQUESTED);
    if version >= 10 {
        t.topic_id = id;
    }
    t
}

pub async fn handle(
    broker: &Broker,
    req: MetadataRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<MetadataResponse> {
    // Versions before 4 have no flag and always allowed auto creation.
    let allow_auto = version < 4 || req.allow_auto_topic_creation;
    let topics = match req.topics {
        // v0 sends an empty list for "all topics"; later versions send null.
        None => all(broker, version),
        Some(list) if list.is_empty() && version == 0 => all(broker, version),
        Some(list) => list
            .into_iter()
            .map(|t| match t.name {
                Some(name) => match broker.topic_or_auto_create(&name, allow_auto) {
                    Ok(Some(meta)) => topic_entry(broker, &meta, version),
                    Ok(None) => missing(
                        Some(&name),
                        uuid::Uuid::nil(),
                        ResponseError::UnknownTopicOrPartition.code(),
                        version,
                    ),
                    Err(e) => missing(
                        Some(&name),
                        uuid::Uuid::nil(),
                        ErrorCode::from(&e).code(),
                        version,
                    ),
                },
                None => match broker.topic_by_id(t.topic_id) {
                    Some(meta) => topic_entry(broker, &meta, version),
                    None => missing(
                        None,
                        t.topic_id,
                        ResponseError::UnknownTopicId.code(),
                        version,
                    ),
                },
            })
            .collect(),
    };
    let host = str_bytes(&ctx.listener.advertised_host);
    let mut resp = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.node_id))
            .with_host(host)
            .with_port(ctx.listener.advertised_port)])
        .with_controller_id(BrokerId(broker.node_id))
        .with_topics(topics);
    if version >= 2 {
        resp.cluster_id = Some(str_bytes(&broker.cluster_id));
    }
    if (8..=10).contains(&version) {
        resp.cluster_authorized_operations = OPS_NOT_REQUESTED;
    }
    Some(resp)
}

fn all(broker: &Broker, version: i16) -> Vec<MetadataResponseTopic> {
    broker
        .all_topics()
        .iter()
        .map(|m| topic_entry(broker, m, version))
        .collect()
}
