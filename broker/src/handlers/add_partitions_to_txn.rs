//! AddPartitionsToTxn: the partitions a transaction will write to (v0-3 from clients; v4 batches several
//! transactions and may only verify). Unknown partitions fail the whole request, as in Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::fenced_code;
use crate::broker::Broker;
use crate::request::RequestContext;

/// Results per topic for one transaction.
fn add_one(
    broker: &Broker,
    txn_id: &str,
    pid: i64,
    epoch: i16,
    topics: &[AddPartitionsToTxnTopic],
    verify_only: bool,
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p)))
        .collect();
    let unknown: Vec<bool> = wanted
        .iter()
        .map(|(t, p)| broker.partition(t, *p).is_none())
        .collect();
    let codes: Vec<i16> = if unknown.iter().any(|u| *u) {
        unknown
            .iter()
            .map(|u| {
                if *u {
                    ResponseError::UnknownTopicOrPartition.code()
                } else {
                    ResponseError::OperationNotAttempted.code()
                }
            })
            .collect()
    } else if verify_only {
        wanted
            .iter()
            .map(|tp| match broker.txns.contains(txn_id, pid, epoch, tp) {
                Ok(true) => 0,
                Ok(false) => ResponseError::InvalidTxnState.code(),
                Err(c) => c,
            })
            .collect()
    } else {
        let code = tokio::task::block_in_place(|| {
            broker
                .txns
                .add(txn_id, pid, epoch, fenced_code(version), &wanted, None)
        })
        .err()
        .unwrap_or(0);
        vec![code; wanted.len()]
    };
    let mut codes = codes.into_iter();
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(codes.next().unwrap_or(0))
                        })
                        .collect(),
                )
        })
        .collect()
}

pub async fn handle(
    broker: &Broker,
    req: AddPartitionsToTxnRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<AddPartitionsToTxnResponse> {
    if version <= 3 {
        let results = add_one(
            broker,
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id.0,
            req.v3_and_below_producer_epoch,
            &req.v3_and_below_topics,
            false,
            version,
        );
        return Some(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
        );
    }
    let results = req
        .transactions
        .iter()
        .map(|t| {
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(add_one(
                    broker,
                    &t.transactional_id,
                    t.producer_id.0,
                    t.producer_epoch,
                    &t.topics,
                    t.verify_only,
                    version,
                ))
        })
        .collect();
    Some(AddPartitionsToTxnResponse::default().with_results_by_transaction(results))
}
