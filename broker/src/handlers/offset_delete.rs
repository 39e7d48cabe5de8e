//! OffsetDelete: removes committed offsets of topics the group's members do not subscribe to.

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::{topic_name, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: OffsetDeleteRequest,
    _version: i16,
    _ctx: &RequestContext,
) -> Option<OffsetDeleteResponse> {
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    match tokio::task::block_in_place(|| {
        broker
            .groups
            .delete_offsets(&req.group_id, &topics, |t, p| {
                broker.partition(t, p).is_some()
            })
    }) {
        Err(code) => Some(OffsetDeleteResponse::default().with_error_code(code)),
        Ok(result) => Some(
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
        ),
    }
}
