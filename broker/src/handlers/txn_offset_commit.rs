//! TxnOffsetCommit: consumed offsets inside a transaction, visible to OffsetFetch only once it commits.
//! v3+ carries the group generation and member id, which fence zombie members (Kafka Streams EOS v2).
//! Authorization as in Kafka's `handleTxnOffsetCommitRequest`: WRITE on the transactional id, then READ
//! on the group (either refusal fails every partition), then READ on each topic (its partitions alone).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::authz::split_readable;
use super::{fenced_code, topic_name};
use crate::broker::Broker;
use crate::groups::{CommitEntry, CommitParams, PartitionCodes};
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

fn all_failed(topics: &[(String, Vec<CommitEntry>)], code: i16) -> PartitionCodes {
    topics
        .iter()
        .map(|(t, parts)| {
            (
                t.clone(),
                parts.iter().map(|e| (e.partition, code)).collect(),
            )
        })
        .collect()
}

fn commit(
    broker: &Broker,
    req: &TxnOffsetCommitRequest,
    version: i16,
    topics: Vec<(String, Vec<CommitEntry>)>,
) -> PartitionCodes {
    if let Err(code) = broker.txns.check_producer(
        &req.transactional_id,
        req.producer_id.0,
        req.producer_epoch,
        fenced_code(version),
    ) {
        return all_failed(&topics, code);
    }
    let params = CommitParams {
        group_id: req.group_id.to_string(),
        generation: if version >= 3 { req.generation_id } else { -1 },
        member_id: if version >= 3 {
            req.member_id.to_string()
        } else {
            String::new()
        },
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        topics,
    };
    tokio::task::block_in_place(|| {
        broker.groups.txn_commit(params, req.producer_id.0, |t, p| {
            broker.partition(t, p).is_some()
        })
    })
}

pub async fn handle(
    broker: &Broker,
    req: TxnOffsetCommitRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<TxnOffsetCommitResponse> {
    let topics: Vec<(String, Vec<CommitEntry>)> = super::commit_topics!(req.topics);
    let txn_id = &req.transactional_id;
    let result = if !ctx.allowed(
        broker,
        Operation::Write,
        ResourceType::TransactionalId,
        txn_id,
    ) {
        all_failed(
            &topics,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
        )
    } else if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
        all_failed(&topics, ResponseError::GroupAuthorizationFailed.code())
    } else {
        let (allowed, mut result) = split_readable(broker, ctx, topics);
        // Nothing left to commit: Kafka answers without asking the coordinator.
        if !allowed.is_empty() {
            result.extend(commit(broker, &req, version, allowed));
        }
        result
    };
    let topics = result
        .into_iter()
        .map(|(t, parts)| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, c)| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(TxnOffsetCommitResponse::default().with_topics(topics))
}
