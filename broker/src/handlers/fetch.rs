//! Fetch: byte ranges of segment files as they are, with a real long poll. The handler waits on the broker's
//! append signal (never sleep-and-retry) until `min_bytes` are available or `max_wait_ms` has passed.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use runnel_storage::StorageError;
use tokio::time::Instant;

use super::{topic_name, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

/// Longest wait honoured, whatever the client asks (Kafka caps it by the request timeout the same way).
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

struct Collected {
    response: FetchResponse,
    bytes: usize,
    errors: bool,
}

fn partition_error(index: i32, code: i16) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(code)
        .with_high_watermark(-1)
        .with_records(Some(Bytes::new()))
}

fn collect(broker: &Broker, req: &FetchRequest, version: i16) -> Collected {
    let read_committed = req.isolation_level == 1;
    let mut remaining = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let meta = if version >= 13 {
            broker.topic_by_id(t.topic_id)
        } else {
            broker.topic_meta(&t.topic)
        };
        let missing_code = if version >= 13 {
            ResponseError::UnknownTopicId.code()
        } else {
            ResponseError::UnknownTopicOrPartition.code()
        };
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let partition = meta
                .as_ref()
                .and_then(|m| broker.partition(&m.name, p.partition));
            let Some(partition) = partition else {
                errors = true;
                partitions.push(partition_error(p.partition, missing_code));
                continue;
            };
            if p.current_leader_epoch > 0 {
                errors = true;
                partitions.push(partition_error(
                    p.partition,
                    ResponseError::UnknownLeaderEpoch.code(),
                ));
                continue;
            }
            let plan = partition.log().read(p.fetch_offset, read_committed);
            let mut data = PartitionData::default().with_partition_index(p.partition);
            match plan {
                Ok(plan) => {
                    data.high_watermark = plan.high_watermark;
                    data.last_stable_offset = plan.last_stable_offset;
                    data.log_start_offset = plan.log_start_offset;
                    data.aborted_transactions = read_committed.then(|| {
                        plan.aborted
                            .iter()
                            .map(|t| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(t.producer_id))
                                    .with_first_offset(t.first_offset)
                            })
                            .collect()
                    });
                    let mut records = Bytes::new();
                    if let Some(slice) = plan.slice {
                        let limit = (p.partition_max_bytes.max(0) as usize).min(remaining);
                        // The first data of the response is returned even when larger than the limits (KIP-74);
                        // later partitions only when they fit.
                        if limit > 0 || total == 0 {
                            match tokio::task::block_in_place(|| slice.read(limit)) {
                                Ok(b) if total == 0 || b.len() <= limit => records = b,
                                Ok(_) => {}
                                Err(e) => {
                                    tracing::error!(topic = %partition.topic, partition = p.partition, error = %e, "read failed");
                                    data.error_code = ErrorCode::from(&e).code();
                                    errors = true;
                                }
                            }
                        }
                    }
                    total += records.len();
                    remaining = remaining.saturating_sub(records.len());
                    data.records = Some(records);
                }
                Err(e @ StorageError::OffsetOutOfRange { .. }) => {
                    let log = partition.log();
                    data.error_code = ErrorCode::from(&e).code();
                    data.high_watermark = log.high_watermark();
                    data.last_stable_offset = log.last_stable_offset();
                    data.log_start_offset = log.log_start_offset();
                    data.records = Some(Bytes::new());
                    errors = true;
                }
                Err(e) => {
                    data.error_code = ErrorCode::from(&e).code();
                    data.high_watermark = -1;
                    data.records = Some(Bytes::new());
                    errors = true;
                }
            }
            partitions.push(data);
        }
        let mut tr = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= 13 {
            tr.topic_id = t.topic_id;
        } else {
            tr.topic = topic_name(&t.topic);
        }
        topics.push(tr);
    }
    Collected {
        response: FetchResponse::default()
            .with_error_code(ErrorCode::NONE.code())
            .with_session_id(0)
            .with_responses(topics),
        bytes: total,
        errors,
    }
}

pub async fn handle(
    broker: &Broker,
    req: FetchRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<FetchResponse> {
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    loop {
        // Register for the wake-up before looking, so an append between the look and the wait is not missed.
        let notified = broker.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let c = collect(broker, &req, version);
        let enough = if min_bytes == 0 {
            true
        } else {
            c.bytes >= min_bytes
        };
        if enough || c.errors || Instant::now() >= deadline {
            return Some(c.response);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Some(collect(broker, &req, version).response);
        }
    }
}
