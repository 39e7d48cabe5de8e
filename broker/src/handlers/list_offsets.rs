//! ListOffsets: earliest, latest, by timestamp (first record at or after it) and the max-timestamp record.
//! Each topic needs DESCRIBE, as in Kafka's `handleListOffsetRequestV1AndAbove`.

use kafka_protocol::error::ResponseError;
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
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let authorized = describable.contains(&**t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    if !authorized {
                        return base
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_timestamp(-1)
                            .with_offset(-1);
                    }
                    let partition = match partition_or_unknown(broker, &t.name, p.partition_index) {
                        Ok(partition) => partition,
                        Err(code) => {
                            return base
                                .with_error_code(code.code())
                                .with_timestamp(-1)
                                .with_offset(-1)
                        }
                    };
                    if p.current_leader_epoch > 0 {
                        return base
                            .with_error_code(ResponseError::UnknownLeaderEpoch.code())
                            .with_timestamp(-1)
                            .with_offset(-1);
                    }
                    let log = partition.log();
                    let found = match p.timestamp {
                        // read_committed consumers see the log end as the last stable offset.
                        LATEST | LATEST_TIERED if req.isolation_level == 1 => {
                            Ok(Some((log.last_stable_offset(), -1)))
                        }
                        LATEST | LATEST_TIERED => Ok(Some((log.high_watermark(), -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        MAX_TIMESTAMP => log
                            .max_timestamp_offset()
                            .map(|o| o.map(|o| (o.offset, o.timestamp))),
                        ts if ts >= 0 => log
                            .offset_for_timestamp(ts)
                            .map(|o| o.map(|o| (o.offset, o.timestamp))),
                        _ => Err(runnel_storage::StorageError::OffsetOutOfRange {
                            offset: p.timestamp,
                            start: 0,
                            end: 0,
                        }),
                    };
                    let mut r = match found {
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
                    };
                    if version >= 4 {
                        r.leader_epoch = 0;
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Some(ListOffsetsResponse::default().with_topics(topics))
}
