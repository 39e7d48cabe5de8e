//! OffsetCommit: group-managed (generation and member checked) or simple (generation -1, no member).

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::topic_name;
use crate::broker::Broker;
use crate::groups::CommitParams;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: OffsetCommitRequest,
    _version: i16,
    _ctx: &RequestContext,
) -> Option<OffsetCommitResponse> {
    let params = CommitParams {
        group_id: req.group_id.to_string(),
        generation: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        topics: super::commit_topics!(req.topics),
    };
    let result = tokio::task::block_in_place(|| {
        broker.groups.commit(params, |topic, partition| {
            broker.partition(topic, partition).is_some()
        })
    });
    let topics = result
        .into_iter()
        .map(|(t, parts)| {
            OffsetCommitResponseTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|(p, code)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(OffsetCommitResponse::default().with_topics(topics))
}
