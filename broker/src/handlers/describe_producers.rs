//! DescribeProducers: the idempotent and transactional producers a partition knows, with their open
//! transaction's first offset (what `kafka-transactions describe-producers` shows). Kafka's order per
//! topic: a valid name, then READ on it, then that it exists.

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

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
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let refused = topic_error(broker, ctx, &t.name);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let r = PartitionResponse::default().with_partition_index(p);
                    if let Some((code, message)) = &refused {
                        return r
                            .with_error_code(*code)
                            .with_error_message(Some(message.clone()));
                    }
                    let partition = match partition_or_unknown(broker, &t.name, p) {
                        Ok(partition) => partition,
                        Err(code) => return r.with_error_code(code.code()),
                    };
                    let log = partition.log();
                    let producers = log
                        .producers()
                        .producers()
                        .map(|(pid, e)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(*pid))
                                .with_producer_epoch(i32::from(e.epoch))
                                .with_last_sequence(e.batches.back().map_or(-1, |b| b.last_seq))
                                .with_last_timestamp(e.last_timestamp)
                                .with_coordinator_epoch(0)
                                .with_current_txn_start_offset(
                                    e.current_txn_first_offset.unwrap_or(-1),
                                )
                        })
                        .collect();
                    r.with_error_code(ErrorCode::NONE.code())
                        .with_active_producers(producers)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Some(DescribeProducersResponse::default().with_topics(topics))
}
