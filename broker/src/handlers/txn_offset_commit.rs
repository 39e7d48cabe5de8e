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
use super::{every_partition, fenced_code, overridden, topic_name};
use crate::broker::Broker;
use crate::cluster::coordinator_store::KeyKind;
use crate::groups::{CommitEntry, CommitParams, PartitionCodes};
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::transactions::store::META_RECORD;
use crate::transactions::{TxnCoordinator, TxnMeta};

async fn commit(
    broker: &Broker,
    req: &TxnOffsetCommitRequest,
    version: i16,
    topics: Vec<(String, Vec<CommitEntry>)>,
) -> PartitionCodes {
    let group = req.group_id.as_str();
    if let Err(code) = broker.hold(&broker.groups, group).await {
        return every_partition(&topics, code);
    }
    if let Err(code) = check_producer(broker, req, version).await {
        return every_partition(&topics, code);
    }
    // The outcome of this producer's previous transaction must be settled before new offsets join it
    // (else a later outcome would settle both).
    if !broker.apply_markers_of(vec![group.to_string()]).await {
        return every_partition(&topics, ResponseError::CoordinatorNotAvailable.code());
    }
    let params = CommitParams {
        group_id: group.to_string(),
        generation: if version >= 3 { req.generation_id } else { -1 },
        member_id: if version >= 3 {
            req.member_id.to_string()
        } else {
            String::new()
        },
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        topics,
    };
    let codes = tokio::task::block_in_place(|| {
        broker.groups.txn_commit(params, req.producer_id.0, |t, p| {
            broker.partition(t, p).is_some()
        })
    });
    match broker.durable(&broker.groups, group).await {
        Ok(()) => codes,
        Err(code) => overridden(codes, code),
    }
}

/// The producer must be the transactional id's current one. In a cluster its metadata is read from the
/// database, as its coordinator last wrote it (every change is written before it is answered): the id is
/// usually held by another broker, and a copy held here may be one another broker has since claimed and
/// moved on from, which would fence the producer that broker just initialized.
async fn check_producer(
    broker: &Broker,
    req: &TxnOffsetCommitRequest,
    version: i16,
) -> Result<(), i16> {
    let (id, pid, epoch) = (
        req.transactional_id.as_str(),
        req.producer_id.0,
        req.producer_epoch,
    );
    let fenced = fenced_code(version);
    match &broker.cluster {
        Some(node) => {
            let unavailable = ResponseError::CoordinatorNotAvailable.code();
            let record = node
                .coordinators
                .record(KeyKind::Transaction, id, META_RECORD)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %e, "cannot read a transaction's state");
                    unavailable
                })?;
            let meta: Option<TxnMeta> = record
                .map(|v| serde_json::from_str(&v))
                .transpose()
                .map_err(|e| {
                    tracing::error!(transactional_id = id, error = %e, "unreadable transaction state");
                    unavailable
                })?;
            TxnCoordinator::check_producer_of(meta.as_ref(), pid, epoch, fenced)
        }
        None => broker.txns.check_producer(id, pid, epoch, fenced),
    }
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
        every_partition(
            &topics,
            ResponseError::TransactionalIdAuthorizationFailed.code(),
        )
    } else if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
        every_partition(&topics, ResponseError::GroupAuthorizationFailed.code())
    } else {
        let (allowed, mut result) = split_readable(broker, ctx, topics);
        // Nothing left to commit: Kafka answers without asking the coordinator.
        if !allowed.is_empty() {
            result.extend(commit(broker, &req, version, allowed).await);
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
