//! TxnOffsetCommit: consumed offsets inside a transaction, visible to OffsetFetch only once it commits.
//! v3+ carries the group generation and member id, which fence zombie members (Kafka Streams EOS v2).

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::{fenced_code, topic_name};
use crate::broker::Broker;
use crate::groups::CommitParams;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: TxnOffsetCommitRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<TxnOffsetCommitResponse> {
    let producer_ok = broker.txns.check_producer(
        &req.transactional_id,
        req.producer_id.0,
        req.producer_epoch,
        fenced_code(version),
    );
    let params = CommitParams {
        group_id: req.group_id.to_string(),
        generation: if version >= 3 { req.generation_id } else { -1 },
        member_id: if version >= 3 {
            req.member_id.to_string()
        } else {
            String::new()
        },
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        topics: super::commit_topics!(req.topics),
    };
    let result = match producer_ok {
        Err(code) => params
            .topics
            .iter()
            .map(|(t, parts)| {
                (
                    t.clone(),
                    parts.iter().map(|e| (e.partition, code)).collect(),
                )
            })
            .collect(),
        Ok(()) => tokio::task::block_in_place(|| {
            broker.groups.txn_commit(params, req.producer_id.0, |t, p| {
                broker.partition(t, p).is_some()
            })
        }),
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
