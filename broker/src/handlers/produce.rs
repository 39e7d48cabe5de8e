//! Produce: validate each partition's batches, assign offsets in place and append them as received.
//! Responses carry the first offset; retried idempotent batches get their original offsets back.
//! Authorization as in Kafka's `handleProduceRequest`: transactional records need WRITE on the
//! transactional id (or the whole request fails), and each topic needs WRITE (its partitions fail alone).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use runnel_storage::StorageError;

use super::authz::allowed_names;
use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::partition::{Partition, StartedAppend};
use crate::request::Outcome;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// Kafka's `RequestUtils.hasTransactionalRecords`: only the first batch of each partition is looked at.
fn has_transactional_records(req: &ProduceRequest) -> bool {
    req.topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter())
        .filter_map(|p| p.records.as_deref())
        .filter_map(|r| runnel_storage::batch::BatchHeader::parse(r).ok())
        .any(|h| h.magic >= 2 && h.is_transactional())
}

/// The answer when the transactional id is refused: every partition fails, nothing is written.
fn refuse_transactional(req: &ProduceRequest, version: i16) -> Outcome<ProduceResponse> {
    let error = ResponseError::TransactionalIdAuthorizationFailed;
    if req.acks == 0 {
        return Outcome::Close(format!("acks=0 produce failed with error {}", error.code()));
    }
    let responses = req
        .topic_data
        .iter()
        .map(|t| {
            let partitions = t
                .partition_data
                .iter()
                .map(|p| {
                    partition_error(
                        p.index,
                        error.code(),
                        Some("Transactional Id authorization failed.".into()),
                        version,
                    )
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    Outcome::Respond(ProduceResponse::default().with_responses(responses))
}

fn partition_error(
    index: i32,
    code: i16,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1);
    if version >= 8 {
        r.error_message = message.map(|m| str_bytes(&m));
    }
    r
}

/// A produce request whose appends have all begun (queued for the cluster's commit round, or done on the
/// local log), to be answered once they are durable.
pub struct StartedProduce {
    acks: i16,
    version: i16,
    topics: Vec<(TopicName, Vec<Slot>)>,
}

enum Slot {
    Answered(PartitionProduceResponse),
    Appending {
        index: i32,
        name: String,
        partition: Arc<Partition>,
        append: StartedAppend,
    },
}

/// Checks the request and begins every partition's append before waiting for any, so a request's
/// partitions share one commit round in a cluster. A request refused as a whole is the `Err`.
pub async fn start(
    broker: &Broker,
    req: ProduceRequest,
    version: i16,
    ctx: &RequestContext,
) -> Result<StartedProduce, Outcome<ProduceResponse>> {
    if has_transactional_records(&req) {
        let authorized = req.transactional_id.as_deref().is_some_and(|id| {
            ctx.allowed(broker, Operation::Write, ResourceType::TransactionalId, id)
        });
        if !authorized {
            return Err(refuse_transactional(&req, version));
        }
    }
    let writable = allowed_names(
        broker,
        ctx,
        Operation::Write,
        ResourceType::Topic,
        req.topic_data.iter().map(|t| &**t.name),
    );
    let acks = req.acks;
    let valid_acks = (-1..=1).contains(&acks);
    let mut topics = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.to_string();
        let authorized = writable.contains(&name);
        let known = authorized && broker.topic_meta(&name).is_some();
        let mut slots = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            let index = pd.index;
            let refused = |code: ResponseError, message: Option<String>| {
                Slot::Answered(partition_error(index, code.code(), message, version))
            };
            if !authorized {
                slots.push(refused(ResponseError::TopicAuthorizationFailed, None));
                continue;
            }
            if !valid_acks {
                slots.push(refused(ResponseError::InvalidRequiredAcks, None));
                continue;
            }
            let partition = if known {
                broker.partition(&name, index)
            } else {
                None
            };
            let Some(partition) = partition else {
                slots.push(refused(
                    ResponseError::UnknownTopicOrPartition,
                    Some(format!(
                        "This server does not host this topic-partition: {name}-{index}"
                    )),
                ));
                continue;
            };
            let Some(records) = pd.records else {
                slots.push(refused(ResponseError::CorruptMessage, None));
                continue;
            };
            let now = runnel_storage::now_ms();
            match partition.start_append(records.to_vec(), now).await {
                Ok(append) => slots.push(Slot::Appending {
                    index,
                    name: name.clone(),
                    partition,
                    append,
                }),
                Err(e) => {
                    log_rejection(&name, index, &e);
                    slots.push(Slot::Answered(rejection(&name, index, &e, version)));
                }
            }
        }
        topics.push((topic.name, slots));
    }
    Ok(StartedProduce {
        acks,
        version,
        topics,
    })
}

impl StartedProduce {
    /// Waits for every append and answers (acks=0: nothing, or closing on a failure, as Kafka does).
    pub async fn finish(self, broker: &Broker) -> Outcome<ProduceResponse> {
        let version = self.version;
        let mut appended = false;
        let mut responses = Vec::with_capacity(self.topics.len());
        for (topic, slots) in self.topics {
            let mut partitions = Vec::with_capacity(slots.len());
            for slot in slots {
                let (index, name, partition, append) = match slot {
                    Slot::Answered(r) => {
                        partitions.push(r);
                        continue;
                    }
                    Slot::Appending {
                        index,
                        name,
                        partition,
                        append,
                    } => (index, name, partition, append),
                };
                match append.finish().await {
                    Ok(info) => {
                        appended |= !info.duplicate;
                        let mut r = PartitionProduceResponse::default()
                            .with_index(index)
                            .with_error_code(ErrorCode::NONE.code())
                            .with_base_offset(info.base_offset)
                            .with_log_append_time_ms(info.log_append_time);
                        if version >= 5 {
                            r.log_start_offset = partition.log_start_offset_hint();
                        }
                        partitions.push(r);
                    }
                    Err(e) => {
                        log_rejection(&name, index, &e);
                        partitions.push(rejection(&name, index, &e, version));
                    }
                }
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic)
                    .with_partition_responses(partitions),
            );
        }
        if appended {
            broker.appended.notify_waiters();
        }
        if self.acks == 0 {
            // The client will not read an answer, so a failure is signalled the way Kafka does: by closing.
            let failed = responses
                .iter()
                .flat_map(|t| t.partition_responses.iter())
                .find(|p| p.error_code != ErrorCode::NONE.code());
            return match failed {
                Some(p) => {
                    Outcome::Close(format!("acks=0 produce failed with error {}", p.error_code))
                }
                None => Outcome::Silent,
            };
        }
        Outcome::Respond(ProduceResponse::default().with_responses(responses))
    }
}

/// The answer for a refused append. Records refused one by one (KIP-467) are named in `record_errors`, with
/// Kafka's wording, so clients can say which records of the batch were at fault.
fn rejection(topic: &str, index: i32, e: &StorageError, version: i16) -> PartitionProduceResponse {
    let StorageError::MissingKey { records } = e else {
        return partition_error(
            index,
            ErrorCode::from(e).code(),
            Some(e.to_string()),
            version,
        );
    };
    let why = format!(
        "Compacted topic cannot accept message without key in topic partition {topic}-{index}."
    );
    let message = format!(
        "One or more records have been rejected due to {} record errors in total, and only showing the first error message: {why}",
        records.len()
    );
    let mut r = partition_error(index, ErrorCode::from(e).code(), Some(message), version);
    if version >= 8 {
        r.record_errors = records
            .iter()
            .map(|&i| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(i)
                    .with_batch_index_error_message(Some(str_bytes(&why)))
            })
            .collect();
    }
    r
}

fn log_rejection(topic: &str, partition: i32, e: &StorageError) {
    match e {
        StorageError::Io { .. } | StorageError::Poisoned | StorageError::Unavailable(_) => {
            tracing::error!(topic, partition, error = %e, "append failed")
        }
        _ => tracing::debug!(topic, partition, error = %e, "produce rejected"),
    }
}
