//! DeleteRecords: moves each partition's log start offset; -1 means the high watermark. Each topic needs
//! DELETE, as in Kafka's `handleDeleteRecordsRequest`.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use futures_util::future::join_all;
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
    let deletable = &deletable;
    let topics = join_all(req.topics.into_iter().map(|t| async move {
        let authorized = deletable.contains(&**t.name);
        let topic_name = &t.name;
        let partitions = join_all(t.partitions.iter().map(|p| async move {
            let r = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            if !authorized {
                return r
                    .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_low_watermark(-1);
            }
            let partition = match partition_or_unknown(broker, topic_name, p.partition_index) {
                Ok(partition) => partition,
                Err(code) => return r.with_error_code(code.code()).with_low_watermark(-1),
            };
            let result = partition.delete_records_before(p.offset).await;
            match result {
                Ok(low) => r
                    .with_error_code(ErrorCode::NONE.code())
                    .with_low_watermark(low),
                Err(e) => r
                    .with_error_code(ErrorCode::from(&e).code())
                    .with_low_watermark(-1),
            }
        }))
        .await;
        DeleteRecordsTopicResult::default()
            .with_name(t.name)
            .with_partitions(partitions)
    }))
    .await;
    Some(DeleteRecordsResponse::default().with_topics(topics))
}
