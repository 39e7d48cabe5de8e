//! OffsetCommit: group-managed (generation and member checked) or simple (generation -1, no member).
//! Authorization as in Kafka's `handleOffsetCommitRequest`: READ on the group or every partition fails
//! with GROUP_AUTHORIZATION_FAILED; READ on each topic, or its partitions alone fail.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::authz::split_readable;
use super::{every_partition, overridden, topic_name};
use crate::broker::Broker;
use crate::groups::{CommitEntry, CommitParams, PartitionCodes};
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: OffsetCommitRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<OffsetCommitResponse> {
    let topics: Vec<(String, Vec<CommitEntry>)> = super::commit_topics!(req.topics);
    let result: PartitionCodes =
        if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
            every_partition(&topics, ResponseError::GroupAuthorizationFailed.code())
        } else {
            let (allowed, mut result) = split_readable(broker, ctx, topics);
            // Nothing left to commit: Kafka answers without asking the coordinator.
            let held = if allowed.is_empty() {
                Ok(false)
            } else {
                broker.hold(&broker.groups, &req.group_id).await
            };
            if let Err(code) = held {
                result.extend(every_partition(&allowed, code));
            } else if !allowed.is_empty() {
                let params = CommitParams {
                    group_id: req.group_id.to_string(),
                    generation: req.generation_id_or_member_epoch,
                    member_id: req.member_id.to_string(),
                    instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
                    topics: allowed,
                };
                let codes = tokio::task::block_in_place(|| {
                    broker.groups.commit(params, |topic, partition| {
                        broker.partition(topic, partition).is_some()
                    })
                });
                match broker.durable(&broker.groups, &req.group_id).await {
                    Ok(()) => result.extend(codes),
                    Err(code) => result.extend(overridden(codes, code)),
                }
            }
            result
        };
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
