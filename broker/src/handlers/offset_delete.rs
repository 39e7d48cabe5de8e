//! OffsetDelete: removes committed offsets of topics the group's members do not subscribe to.
//! Authorization as in Kafka's `handleOffsetDeleteRequest`: DELETE on the group (else a top-level
//! GROUP_AUTHORIZATION_FAILED), READ on each topic (else its partitions answer TOPIC_AUTHORIZATION_FAILED,
//! ahead of the coordinator's answers; a group-level error from the coordinator replaces them all).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::authz::allowed_names;
use super::{topic_name, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: OffsetDeleteRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<OffsetDeleteResponse> {
    if !ctx.allowed(
        broker,
        Operation::Delete,
        ResourceType::Group,
        &req.group_id,
    ) {
        return Some(
            OffsetDeleteResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        );
    }
    let readable = allowed_names(
        broker,
        ctx,
        Operation::Read,
        ResourceType::Topic,
        req.topics.iter().map(|t| &**t.name),
    );
    let (allowed, refused): (Vec<(String, Vec<i32>)>, Vec<_>) = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .partition(|(t, _)| readable.contains(t));
    if let Err(code) = broker.hold(&broker.groups, &req.group_id).await {
        return Some(OffsetDeleteResponse::default().with_error_code(code));
    }
    let deleted = tokio::task::block_in_place(|| {
        broker
            .groups
            .delete_offsets(&req.group_id, &allowed, |t, p| {
                broker.partition(t, p).is_some()
            })
    });
    if deleted.is_ok() {
        if let Err(code) = broker.durable(&broker.groups, &req.group_id).await {
            return Some(OffsetDeleteResponse::default().with_error_code(code));
        }
    }
    let result = match deleted {
        Err(code) => return Some(OffsetDeleteResponse::default().with_error_code(code)),
        Ok(result) => {
            let code = ResponseError::TopicAuthorizationFailed.code();
            let refused = refused
                .into_iter()
                .map(|(t, parts)| (t, parts.into_iter().map(|p| (p, code)).collect()));
            refused
                .chain(result)
                .collect::<Vec<(String, Vec<(i32, i16)>)>>()
        }
    };
    Some(
        OffsetDeleteResponse::default()
            .with_error_code(ErrorCode::NONE.code())
            .with_topics(
                result
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(topic_name(&t))
                            .with_partitions(
                                parts
                                    .into_iter()
                                    .map(|(p, c)| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(c)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
    )
}
