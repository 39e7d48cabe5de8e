//! OffsetFetch: committed offsets with their metadata as committed, for one group (v0-7) or several (v8+).
//! A partition without a commit answers offset -1.

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};

use kafka_protocol::error::ResponseError;

use super::{str_bytes, topic_name, ErrorCode};
use crate::broker::Broker;
use crate::groups::group::CommittedOffset;
use crate::groups::FetchedOffsets as Found;
use crate::request::RequestContext;

/// (offset, leader epoch, metadata, error) for one partition. With `require_stable`, a partition whose offset
/// an open transaction is about to change answers UNSTABLE_OFFSET_COMMIT, so the consumer retries.
fn fields(
    broker: &Broker,
    group: &str,
    topic: &str,
    partition: i32,
    o: &Option<CommittedOffset>,
    require_stable: bool,
) -> (i64, i32, String, i16) {
    if require_stable && broker.groups.has_pending(group, topic, partition) {
        return (
            -1,
            -1,
            String::new(),
            ResponseError::UnstableOffsetCommit.code(),
        );
    }
    match o {
        Some(o) => (
            o.offset,
            o.leader_epoch,
            o.metadata.clone().unwrap_or_default(),
            ErrorCode::NONE.code(),
        ),
        None => (-1, -1, String::new(), ErrorCode::NONE.code()),
    }
}

pub async fn handle(
    broker: &Broker,
    req: OffsetFetchRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<OffsetFetchResponse> {
    if version >= 8 {
        let groups = req
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                        .collect()
                });
                let found: Found = broker.groups.fetch_offsets(&g.group_id, topics);
                let topics = found
                    .into_iter()
                    .map(|(t, parts)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(&t))
                            .with_partitions(
                                parts
                                    .iter()
                                    .map(|(p, o)| {
                                        let (offset, epoch, meta, code) = fields(
                                            broker,
                                            &g.group_id,
                                            &t,
                                            *p,
                                            o,
                                            req.require_stable,
                                        );
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(*p)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(epoch)
                                            .with_metadata(Some(str_bytes(&meta)))
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(g.group_id.0.clone()))
                    .with_topics(topics)
                    .with_error_code(ErrorCode::NONE.code())
            })
            .collect();
        return Some(OffsetFetchResponse::default().with_groups(groups));
    }
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let found: Found = broker.groups.fetch_offsets(&req.group_id, topics);
    let topics = found
        .into_iter()
        .map(|(t, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(
                    parts
                        .iter()
                        .map(|(p, o)| {
                            let stable = version >= 7 && req.require_stable;
                            let (offset, epoch, meta, code) =
                                fields(broker, &req.group_id, &t, *p, o, stable);
                            let mut r = OffsetFetchResponsePartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(offset)
                                .with_metadata(Some(str_bytes(&meta)))
                                .with_error_code(code);
                            if version >= 5 {
                                r.committed_leader_epoch = epoch;
                            }
                            r
                        })
                        .collect(),
                )
        })
        .collect();
    Some(
        OffsetFetchResponse::default()
            .with_topics(topics)
            .with_error_code(ErrorCode::NONE.code()),
    )
}
