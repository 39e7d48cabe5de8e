//! DescribeProducers: the idempotent and transactional producers a partition knows, with their open
//! transaction's first offset (what `kafka-transactions describe-producers` shows).

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::{partition_or_unknown, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: DescribeProducersRequest,
    _version: i16,
    _ctx: &RequestContext,
) -> Option<DescribeProducersResponse> {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&p| {
                    let r = PartitionResponse::default().with_partition_index(p);
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
