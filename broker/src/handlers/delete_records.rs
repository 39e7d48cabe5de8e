//! DeleteRecords: moves each partition's log start offset; -1 means the high watermark. Each topic needs
//! DELETE, as in Kafka's `handleDeleteRecordsRequest`.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use kafka_protocol::error::ResponseError;

use super::authz::allowed_names;
use super::{partition_or_unknown, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: DeleteRecordsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DeleteRecordsResponse> {
    let deletable = allowed_names(
        broker,
        ctx,
        Operation::Delete,
        ResourceType::Topic,
        req.topics.iter().map(|t| &**t.name),
    );
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let authorized = deletable.contains(&**t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    if !authorized {
                        return r
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_low_watermark(-1);
                    }
                    let partition = match partition_or_unknown(broker, &t.name, p.partition_index) {
                        Ok(partition) => partition,
                        Err(code) => return r.with_error_code(code.code()).with_low_watermark(-1),
                    };
                    let result = tokio::task::block_in_place(|| {
                        let mut log = partition.log();
                        let target = if p.offset == -1 {
                            log.high_watermark()
                        } else {
                            p.offset
                        };
                        log.delete_records_before(target)
                    });
                    match result {
                        Ok(low) => r
                            .with_error_code(ErrorCode::NONE.code())
                            .with_low_watermark(low),
                        Err(e) => r
                            .with_error_code(ErrorCode::from(&e).code())
                            .with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    Some(DeleteRecordsResponse::default().with_topics(topics))
}
