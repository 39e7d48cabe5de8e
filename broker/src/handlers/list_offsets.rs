//! ListOffsets: earliest, latest, by timestamp (first record at or after it) and the max-timestamp record.
//! Each topic needs DESCRIBE, as in Kafka's `handleListOffsetRequestV1AndAbove`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_request::ListOffsetsPartition;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::authz::allowed_names;
use super::{partition_or_unknown, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub async fn handle(
    broker: &Broker,
    req: ListOffsetsRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<ListOffsetsResponse> {
    let describable = allowed_names(
        broker,
        ctx,
        Operation::Describe,
        ResourceType::Topic,
        req.topics.iter().map(|t| &**t.name),
    );
    let isolation = req.isolation_level;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let authorized = describable.contains(&**t.name);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            partitions.push(if authorized {
                list_one(broker, &t.name, p, isolation, version).await
            } else {
                unanswered(
                    p.partition_index,
                    ResponseError::TopicAuthorizationFailed.code(),
                )
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    Some(ListOffsetsResponse::default().with_topics(topics))
}

fn unanswered(index: i32, code: i16) -> ListOffsetsPartitionResponse {
    ListOffsetsPartitionResponse::default()
        .with_partition_index(index)
        .with_error_code(code)
        .with_timestamp(-1)
        .with_offset(-1)
}

async fn list_one(
    broker: &Broker,
    topic: &str,
    p: &ListOffsetsPartition,
    isolation: i8,
    version: i16,
) -> ListOffsetsPartitionResponse {
    let partition = match partition_or_unknown(broker, topic, p.partition_index) {
        Ok(partition) => partition,
        Err(code) => return unanswered(p.partition_index, code.code()),
    };
    if p.current_leader_epoch > 0 {
        return unanswered(p.partition_index, ResponseError::UnknownLeaderEpoch.code());
    }
    let found = match p.timestamp {
        LATEST | LATEST_TIERED | EARLIEST | EARLIEST_LOCAL => {
            partition.bounds().await.map(|b| {
                Some(match p.timestamp {
                    // read_committed consumers see the log end as the last stable offset.
                    LATEST | LATEST_TIERED if isolation == 1 => (b.last_stable_offset, -1),
                    LATEST | LATEST_TIERED => (b.high_watermark, -1),
                    _ => (b.log_start_offset, -1),
                })
            })
        }
        MAX_TIMESTAMP => partition
            .max_timestamp_offset()
            .await
            .map(|o| o.map(|o| (o.offset, o.timestamp))),
        ts if ts >= 0 => partition
            .offset_for_timestamp(ts)
            .await
            .map(|o| o.map(|o| (o.offset, o.timestamp))),
        _ => Err(runnel_storage::StorageError::OffsetOutOfRange {
            offset: p.timestamp,
            start: 0,
            end: 0,
        }),
    };
    let mut base = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
    if version >= 4 {
        base.leader_epoch = 0;
    }
    match found {
        Ok(Some((offset, timestamp))) => base
            .with_error_code(ErrorCode::NONE.code())
            .with_offset(offset)
            .with_timestamp(timestamp),
        Ok(None) => base
            .with_error_code(ErrorCode::NONE.code())
            .with_offset(-1)
            .with_timestamp(-1),
        Err(e) => base
            .with_error_code(ErrorCode::from(&e).code())
            .with_offset(-1)
            .with_timestamp(-1),
    }
}
