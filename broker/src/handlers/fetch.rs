//! Fetch: byte ranges of segment files as they are, with a real long poll. The handler waits on the broker's
//! append signal (never sleep-and-retry) until `min_bytes` are available or `max_wait_ms` has passed.
//! Authorization as in Kafka's `handleFetchRequest`: a consumer needs READ on each topic, a follower
//! (replica id set) CLUSTER_ACTION on the cluster; an unknown topic id is UNKNOWN_TOPIC_ID before either.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use runnel_storage::StorageError;
use tokio::time::Instant;

use super::authz::allowed_names;
use super::{topic_name, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// The topics a request may read, decided once per request (not on every pass of the long poll).
enum Readable {
    /// A follower with CLUSTER_ACTION.
    Everything,
    /// A follower without it: every partition fails, known or not.
    Nothing,
    /// A consumer: the topics it has READ on.
    Topics(HashSet<String>),
}

impl Readable {
    fn decide(broker: &Broker, req: &FetchRequest, version: i16, ctx: &RequestContext) -> Self {
        let replica_id = if version >= 15 {
            req.replica_state.replica_id.0
        } else {
            req.replica_id.0
        };
        if replica_id >= 0 {
            return if ctx.allowed_on_cluster(broker, Operation::ClusterAction) {
                Readable::Everything
            } else {
                Readable::Nothing
            };
        }
        let names: Vec<String> = req
            .topics
            .iter()
            .filter_map(|t| topic_name_of(broker, t, version))
            .collect();
        Readable::Topics(allowed_names(
            broker,
            ctx,
            Operation::Read,
            ResourceType::Topic,
            names.iter().map(String::as_str),
        ))
    }
}

/// The topic's name: as sent before v13, resolved from its id from v13 on (None when unknown).
fn topic_name_of(
    broker: &Broker,
    t: &kafka_protocol::messages::fetch_request::FetchTopic,
    version: i16,
) -> Option<String> {
    if version >= 13 {
        broker.topic_by_id(t.topic_id).map(|m| m.name)
    } else {
        Some(t.topic.to_string())
    }
}

/// The code every partition of the topic gets before its data is looked at, if any.
fn topic_error(readable: &Readable, name: Option<&str>) -> Option<ResponseError> {
    match (readable, name) {
        (Readable::Nothing, _) => Some(ResponseError::TopicAuthorizationFailed),
        (_, None) => Some(ResponseError::UnknownTopicId),
        (Readable::Topics(allowed), Some(n)) if !allowed.contains(n) => {
            Some(ResponseError::TopicAuthorizationFailed)
        }
        _ => None,
    }
}

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

async fn collect(
    broker: &Broker,
    req: &FetchRequest,
    version: i16,
    readable: &Readable,
) -> Collected {
    let read_committed = req.isolation_level == 1;
    let mut remaining = req.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let name = topic_name_of(broker, t, version);
        let refused = topic_error(readable, name.as_deref());
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            if let Some(e) = refused {
                errors = true;
                partitions.push(partition_error(p.partition, e.code()));
                continue;
            }
            let partition = name.as_ref().and_then(|n| broker.partition(n, p.partition));
            let Some(partition) = partition else {
                errors = true;
                partitions.push(partition_error(
                    p.partition,
                    ResponseError::UnknownTopicOrPartition.code(),
                ));
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
            if let Some(replica) = redirect(broker, &partition, p.partition, req, version) {
                partitions.push(replica.await);
                continue;
            }
            let limit = (p.partition_max_bytes.max(0) as usize).min(remaining);
            // The first data of the response is returned even when larger than the limits (KIP-74); later
            // partitions only when they fit.
            let want = (limit > 0 || total == 0).then_some(limit);
            let read = partition.read(p.fetch_offset, read_committed, want).await;
            let mut data = PartitionData::default().with_partition_index(p.partition);
            match read {
                Ok(read) => {
                    data.high_watermark = read.bounds.high_watermark;
                    data.last_stable_offset = read.bounds.last_stable_offset;
                    data.log_start_offset = read.bounds.log_start_offset;
                    data.aborted_transactions = read_committed.then(|| {
                        read.aborted
                            .iter()
                            .map(|t| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(t.producer_id))
                                    .with_first_offset(t.first_offset)
                            })
                            .collect()
                    });
                    let records = if total == 0 || read.records.len() <= limit {
                        read.records
                    } else {
                        Bytes::new()
                    };
                    total += records.len();
                    remaining = remaining.saturating_sub(records.len());
                    data.records = Some(records);
                }
                Err(e @ StorageError::OffsetOutOfRange { .. }) => {
                    data.error_code = ErrorCode::from(&e).code();
                    if let Ok(b) = partition.bounds().await {
                        data.high_watermark = b.high_watermark;
                        data.last_stable_offset = b.last_stable_offset;
                        data.log_start_offset = b.log_start_offset;
                    }
                    data.records = Some(Bytes::new());
                    errors = true;
                }
                Err(e) => {
                    if matches!(e, StorageError::Io { .. } | StorageError::Unavailable(_)) {
                        tracing::error!(topic = %partition.topic, partition = p.partition, error = %e, "read failed");
                    }
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

/// A consumer told to fetch from a broker of its own rack (KIP-392), with the partition's bounds and no
/// records, as Kafka's leader answers when it selects another replica; None to serve it here.
fn redirect<'a>(
    broker: &'a Broker,
    partition: &'a crate::broker::Partition,
    index: i32,
    req: &FetchRequest,
    version: i16,
) -> Option<impl std::future::Future<Output = PartitionData> + 'a> {
    if version < 11 {
        return None;
    }
    let topic_id = broker.topic_meta(&partition.topic)?.id;
    let replica = broker.preferred_read_replica(topic_id, index, &req.rack_id)?;
    Some(async move {
        let mut data = PartitionData::default()
            .with_partition_index(index)
            .with_preferred_read_replica(kafka_protocol::messages::BrokerId(replica))
            .with_records(Some(Bytes::new()));
        if let Ok(b) = partition.bounds().await {
            data.high_watermark = b.high_watermark;
            data.last_stable_offset = b.last_stable_offset;
            data.log_start_offset = b.log_start_offset;
        }
        data
    })
}

pub async fn handle(
    broker: &Broker,
    req: FetchRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<FetchResponse> {
    let readable = Readable::decide(broker, &req, version, ctx);
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    loop {
        // Register for the wake-up before looking, so an append between the look and the wait is not missed.
        let notified = broker.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let c = collect(broker, &req, version, &readable).await;
        let enough = if min_bytes == 0 {
            true
        } else {
            c.bytes >= min_bytes
        };
        if enough || c.errors || Instant::now() >= deadline {
            return Some(c.response);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Some(collect(broker, &req, version, &readable).await.response);
        }
    }
}
