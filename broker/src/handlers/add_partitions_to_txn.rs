//! AddPartitionsToTxn: the partitions a transaction will write to (v0-3 from clients; v4 batches several
//! transactions and may only verify). Unknown partitions fail the whole request, as in Kafka.
//! Authorization as in Kafka's `handleAddPartitionsToTxnRequest`: v4+ comes from brokers and needs
//! CLUSTER_ACTION; below v4 the transactional id needs WRITE (else every partition fails) and each topic
//! WRITE, an internal topic never being writable (TOPIC_AUTHORIZATION_FAILED for those, the rest of the
//! transaction OPERATION_NOT_ATTEMPTED).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use super::authz::{allowed_names, is_internal_topic};
use super::fenced_code;
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Every partition of the topics answered, in request order, with the codes `code` hands out.
fn per_partition(
    topics: &[AddPartitionsToTxnTopic],
    mut code: impl FnMut() -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
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
                                .with_partition_error_code(code())
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Every partition of the topics answered with one code.
fn all_failed(topics: &[AddPartitionsToTxnTopic], code: i16) -> Vec<AddPartitionsToTxnTopicResult> {
    per_partition(topics, || code)
}

/// The topics a client's transaction may add: WRITE on each, internal topics excluded before asking.
fn writable_topics(
    broker: &Broker,
    ctx: &RequestContext,
    topics: &[AddPartitionsToTxnTopic],
) -> std::collections::HashSet<String> {
    allowed_names(
        broker,
        ctx,
        Operation::Write,
        ResourceType::Topic,
        topics
            .iter()
            .map(|t| &**t.name)
            .filter(|t| !is_internal_topic(t)),
    )
}

/// One transaction of the request.
struct Txn<'a> {
    id: &'a str,
    pid: i64,
    epoch: i16,
    topics: &'a [AddPartitionsToTxnTopic],
    verify_only: bool,
}

/// Results per topic for one transaction. `writable` is None for brokers' requests (v4+), which are not
/// checked per topic.
async fn add_one(
    broker: &Broker,
    txn: Txn<'_>,
    version: i16,
    writable: Option<&std::collections::HashSet<String>>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let Txn {
        id: txn_id,
        pid,
        epoch,
        topics,
        verify_only,
    } = txn;
    if let Err(code) = broker.hold_txn(txn_id).await {
        return all_failed(topics, code);
    }
    let wanted: Vec<(String, i32)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), *p)))
        .collect();
    let checked: Vec<i16> = wanted
        .iter()
        .map(|(t, p)| {
            if writable.is_some_and(|w| !w.contains(t)) {
                ResponseError::TopicAuthorizationFailed.code()
            } else if broker.partition(t, *p).is_none() {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                0
            }
        })
        .collect();
    let codes: Vec<i16> = if checked.iter().any(|c| *c != 0) {
        checked
            .iter()
            .map(|c| match c {
                0 => ResponseError::OperationNotAttempted.code(),
                c => *c,
            })
            .collect()
    } else if verify_only {
        let verified: Vec<i16> = wanted
            .iter()
            .map(|tp| match broker.txns.contains(txn_id, pid, epoch, tp) {
                Ok(true) => 0,
                Ok(false) => ResponseError::InvalidTxnState.code(),
                Err(c) => c,
            })
            .collect();
        // Refusals from memory stand only while the claim is current (see `confirmed_refusal`).
        if verified.iter().any(|c| *c != 0) {
            match broker.confirm_held(&broker.txns, txn_id).await {
                Ok(()) => verified,
                Err(moved) => vec![moved; wanted.len()],
            }
        } else {
            verified
        }
    } else {
        let added = tokio::task::block_in_place(|| {
            broker
                .txns
                .add(txn_id, pid, epoch, fenced_code(version), &wanted, None)
        });
        let added = match added {
            Ok(()) => broker.durable(&broker.txns, txn_id).await,
            Err(code) => Err(broker.confirmed_refusal(&broker.txns, txn_id, code).await),
        };
        let code = added.err().unwrap_or(0);
        vec![code; wanted.len()]
    };
    let mut codes = codes.into_iter();
    per_partition(topics, || codes.next().unwrap_or(0))
}

pub async fn handle(
    broker: &Broker,
    req: AddPartitionsToTxnRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<AddPartitionsToTxnResponse> {
    if version <= 3 {
        let txn_id = &req.v3_and_below_transactional_id;
        let topics = &req.v3_and_below_topics;
        let results = if ctx.allowed(
            broker,
            Operation::Write,
            ResourceType::TransactionalId,
            txn_id,
        ) {
            let writable = writable_topics(broker, ctx, topics);
            let txn = Txn {
                id: txn_id,
                pid: req.v3_and_below_producer_id.0,
                epoch: req.v3_and_below_producer_epoch,
                topics,
                verify_only: false,
            };
            add_one(broker, txn, version, Some(&writable)).await
        } else {
            all_failed(
                topics,
                ResponseError::TransactionalIdAuthorizationFailed.code(),
            )
        };
        return Some(
            AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
        );
    }
    if !ctx.allowed_on_cluster(broker, Operation::ClusterAction) {
        return Some(
            AddPartitionsToTxnResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let txn = Txn {
            id: &t.transactional_id,
            pid: t.producer_id.0,
            epoch: t.producer_epoch,
            topics: &t.topics,
            verify_only: t.verify_only,
        };
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(add_one(broker, txn, version, None).await),
        );
    }
    Some(AddPartitionsToTxnResponse::default().with_results_by_transaction(results))
}
