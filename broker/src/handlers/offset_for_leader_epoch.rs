//! OffsetForLeaderEpoch: a single node has had one leader epoch (0) for every partition, so the end offset
//! of epoch 0 is the log end; a later epoch is unknown. CLUSTER_ACTION on the cluster (a follower) or
//! DESCRIBE on the topic (a consumer checking for truncation, KIP-320) is needed, as in Kafka.

use futures_util::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::authz::allowed_names;
use super::{partition_or_unknown, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<OffsetForLeaderEpochResponse> {
    let describable = (!ctx.allowed_on_cluster(broker, Operation::ClusterAction)).then(|| {
        allowed_names(
            broker,
            ctx,
            Operation::Describe,
            ResourceType::Topic,
            req.topics.iter().map(|t| &**t.topic),
        )
    });
    let describable = &describable;
    let topics = join_all(req.topics.into_iter().map(|t| async move {
        let authorized = describable.as_ref().is_none_or(|d| d.contains(&**t.topic));
        let topic_name = &t.topic;
        let partitions = join_all(t.partitions.iter().map(|p| async move {
            let r = EpochEndOffset::default().with_partition(p.partition);
            if !authorized {
                return r.with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            let partition = match partition_or_unknown(broker, topic_name, p.partition) {
                Ok(partition) => partition,
                Err(code) => {
                    return r
                        .with_error_code(code.code())
                        .with_leader_epoch(-1)
                        .with_end_offset(-1)
                }
            };
            if p.current_leader_epoch > 0 {
                return r
                    .with_error_code(ResponseError::UnknownLeaderEpoch.code())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1);
            }
            if p.leader_epoch > 0 {
                return r
                    .with_error_code(ErrorCode::NONE.code())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1);
            }
            match partition.bounds().await {
                Ok(b) => r
                    .with_error_code(ErrorCode::NONE.code())
                    .with_leader_epoch(0)
                    .with_end_offset(b.high_watermark),
                Err(e) => r
                    .with_error_code(ErrorCode::from(&e).code())
                    .with_leader_epoch(-1)
                    .with_end_offset(-1),
            }
        }))
        .await;
        OffsetForLeaderTopicResult::default()
            .with_topic(t.topic)
            .with_partitions(partitions)
    }))
    .await;
    Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
