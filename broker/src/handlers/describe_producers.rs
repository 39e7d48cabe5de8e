//! DescribeProducers: the idempotent and transactional producers a partition knows, with their open
//! transaction's first offset (what `kafka-transactions describe-producers` shows). Kafka's order per
//! topic: a valid name, then READ on it, then that it exists.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

use super::{partition_or_unknown, str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// The error every partition of the topic gets before its producers are looked at, if any.
fn topic_error(broker: &Broker, ctx: &RequestContext, name: &str) -> Option<(i16, StrBytes)> {
    if let Err(e) = runnel_storage::catalog::validate_topic_name(name) {
        return Some((ErrorCode::from(&e).code(), str_bytes(&e.to_string())));
    }
    if !ctx.allowed(broker, Operation::Read, ResourceType::Topic, name) {
        return Some((
            ResponseError::TopicAuthorizationFailed.code(),
            str_bytes("Topic authorization failed."),
        ));
    }
    None
}

pub async fn handle(
    broker: &Broker,
    req: DescribeProducersRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DescribeProducersResponse> {
    let topics = join_all(req.topics.into_iter().map(|t| async move {
        let refused = topic_error(broker, ctx, &t.name);
        let refused = &refused;
        let topic_name = &t.name;
        let partitions = join_all(t.partition_indexes.iter().map(|&p| async move {
            let r = PartitionResponse::default().with_partition_index(p);
            if let Some((code, message)) = refused {
                return r
                    .with_error_code(*code)
                    .with_error_message(Some(message.clone()));
            }
            let partition = match partition_or_unknown(broker, topic_name, p) {
                Ok(partition) => partition,
                Err(code) => return r.with_error_code(code.code()),
            };
            let producers = match partition.producers().await {
                Ok(list) => list
                    .into_iter()
                    .map(|e| {
                        ProducerState::default()
                            .with_producer_id(ProducerId(e.producer_id))
                            .with_producer_epoch(i32::from(e.epoch))
                            .with_last_sequence(e.last_sequence)
                            .with_last_timestamp(e.last_timestamp)
                            .with_coordinator_epoch(0)
                            .with_current_txn_start_offset(e.txn_start_offset)
                    })
                    .collect(),
                Err(e) => return r.with_error_code(ErrorCode::from(&e).code()),
            };
            r.with_error_code(ErrorCode::NONE.code())
                .with_active_producers(producers)
        }))
        .await;
        TopicResponse::default()
            .with_name(t.name)
            .with_partitions(partitions)
    }))
    .await;
    Some(DescribeProducersResponse::default().with_topics(topics))
}
