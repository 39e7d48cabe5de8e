//! Turns one request frame into one response frame: header checks, decoding with the request's version,
//! the handler, encoding. Anything a real broker would refuse by closing the connection returns
//! [`Reply::Close`] with the reason, which the connection logs.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::Decodable;

use crate::api;
use crate::broker::Broker;
use crate::handlers;
use crate::protocol::{encode_response, FixedHeader};
use crate::request::{Outcome, Reply, RequestContext};
use crate::security::{Listener, Principal};

macro_rules! route {
    ($broker:expr, $api:expr, $version:expr, $corr:expr, $body:expr, $ctx:expr, $size:expr,
     { $($key:ident => $req:ty => $handler:path),* $(,)? }) => {
        match $api {
            $(ApiKey::$key => {
                let req = match <$req>::decode(&mut $body, $version) {
                    Ok(r) => r,
                    Err(e) => return unthrottled(Reply::Close(format!("cannot decode {:?} v{}: {e}", $api, $version))),
                };
                let started = std::time::Instant::now();
                let mut outcome: Outcome<_> = $handler($broker, req, $version, &$ctx).await.into();
                // Sizing a fetch response walks it: only when some quota could apply.
                let response_bytes = match (&outcome, $api) {
                    (Outcome::Respond(r), ApiKey::Fetch) if $broker.quotas.any() => {
                        kafka_protocol::protocol::Encodable::compute_size(r, $version).unwrap_or(0)
                    }
                    _ => 0,
                };
                let throttle = throttle_for($broker, $api, &$ctx, $size, response_bytes, started.elapsed());
                if let Outcome::Respond(r) = &mut outcome {
                    r.throttle_time_ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
                }
                (encode(ApiKey::$key, $version, $corr, outcome), throttle)
            })*
            other => (Reply::Close(format!("no handler for {other:?}")), Duration::ZERO),
        }
    };
}

fn encode<R: kafka_protocol::protocol::Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    outcome: Outcome<R>,
) -> Reply {
    match outcome {
        Outcome::Silent => Reply::Nothing,
        Outcome::Close(reason) => Reply::Close(reason),
        Outcome::Respond(r) => match encode_response(api, version, correlation_id, &r) {
            Ok(frame) => Reply::Frame(frame),
            Err(e) => Reply::Close(e.to_string()),
        },
    }
}

/// Who sent a frame: the connection's peer, listener and authenticated principal.
pub struct Caller {
    pub peer: std::net::SocketAddr,
    pub listener: Arc<Listener>,
    pub principal: Arc<Principal>,
}

/// Handles one frame; besides the reply, how long the connection must stay muted for the client's quotas.
fn unthrottled<'a>(reply: Reply) -> (Dispatched<'a>, Duration) {
    (Dispatched::Ready(reply), Duration::ZERO)
}

/// A request's answer: ready, or (a produce whose appends have all begun) still to be awaited, so the
/// connection can read the next request meanwhile.
pub enum Dispatched<'a> {
    Ready(Reply),
    Later(Pin<Box<dyn Future<Output = Reply> + Send + 'a>>),
}

impl Dispatched<'_> {
    pub async fn reply(self) -> Reply {
        match self {
            Dispatched::Ready(r) => r,
            Dispatched::Later(f) => f.await,
        }
    }
}

pub async fn dispatch(broker: &Broker, frame: Bytes, caller: &Caller) -> (Reply, Duration) {
    let (answer, throttle) = dispatch_pipelined(broker, frame, caller).await;
    (answer.reply().await, throttle)
}

/// As [`dispatch`], but a produce request comes back as soon as its appends are queued.
pub async fn dispatch_pipelined<'a>(
    broker: &'a Broker,
    frame: Bytes,
    caller: &Caller,
) -> (Dispatched<'a>, Duration) {
    let started = std::time::Instant::now();
    let api = FixedHeader::peek(&frame).map(|h| h.api_key);
    let size = frame.len();
    let (answer, throttle) = handle(broker, frame, caller).await;
    let Some(api) = api else {
        return (answer, throttle);
    };
    let measured = move |reply: &Reply| {
        let out = match reply {
            Reply::Frame(b) | Reply::FrameThenClose(b, _) => b.len(),
            _ => 0,
        };
        broker.metrics.request(api, size, out, started.elapsed());
    };
    let answer = match answer {
        Dispatched::Ready(reply) => {
            measured(&reply);
            Dispatched::Ready(reply)
        }
        Dispatched::Later(later) => Dispatched::Later(Box::pin(async move {
            let reply = later.await;
            measured(&reply);
            reply
        })),
    };
    (answer, throttle)
}

/// Produce, answered in two steps: every partition's append begins now (and with it the order of this
/// connection's appends), the answer waits for their durability.
async fn produce<'a>(
    broker: &'a Broker,
    version: i16,
    correlation_id: i32,
    mut body: Bytes,
    ctx: RequestContext,
    size: usize,
) -> (Dispatched<'a>, Duration) {
    let req = match ProduceRequest::decode(&mut body, version) {
        Ok(r) => r,
        Err(e) => {
            let reason = format!("cannot decode Produce v{version}: {e}");
            return (Dispatched::Ready(Reply::Close(reason)), Duration::ZERO);
        }
    };
    let started = handlers::produce::start(broker, req, version, &ctx).await;
    let throttle = throttle_for(broker, ApiKey::Produce, &ctx, size, 0, Duration::ZERO);
    let throttle_ms = i32::try_from(throttle.as_millis()).unwrap_or(i32::MAX);
    let later = async move {
        let mut outcome = match started {
            Ok(started) => started.finish(broker).await,
            Err(refused) => refused,
        };
        if let Outcome::Respond(r) = &mut outcome {
            r.throttle_time_ms = throttle_ms;
        }
        encode(ApiKey::Produce, version, correlation_id, outcome)
    };
    (Dispatched::Later(Box::pin(later)), throttle)
}

/// The throttle a request earns under the client's quotas: produce bytes in, fetch bytes out, and request
/// time (APIs that wait by design, long polls and rebalances, are not charged for waiting).
fn throttle_for(
    broker: &Broker,
    api: ApiKey,
    ctx: &RequestContext,
    request_bytes: usize,
    response_bytes: usize,
    took: Duration,
) -> Duration {
    use crate::quotas::QuotaKind;
    let user = &ctx.principal.name;
    let client = ctx.header.client_id.as_deref().unwrap_or_default();
    let bytes = match api {
        ApiKey::Produce => {
            broker
                .quotas
                .record(QuotaKind::Produce, user, client, request_bytes as f64)
        }
        ApiKey::Fetch => {
            broker
                .quotas
                .record(QuotaKind::Fetch, user, client, response_bytes as f64)
        }
        _ => Duration::ZERO,
    };
    let time = match api {
        ApiKey::Fetch | ApiKey::JoinGroup | ApiKey::SyncGroup | ApiKey::Produce => Duration::ZERO,
        _ => broker.quotas.record(
            QuotaKind::Request,
            user,
            client,
            took.as_secs_f64() * 1000.0,
        ),
    };
    let throttle = bytes.max(time);
    if !throttle.is_zero() {
        broker
            .metrics
            .throttled(user, client, throttle.as_millis() as u64);
    }
    throttle
}

async fn handle<'a>(
    broker: &'a Broker,
    frame: Bytes,
    caller: &Caller,
) -> (Dispatched<'a>, Duration) {
    let size = frame.len();
    let Some(fixed) = FixedHeader::peek(&frame) else {
        return unthrottled(Reply::Close(format!(
            "frame of {} bytes is shorter than a request header",
            frame.len()
        )));
    };
    let Ok(api) = ApiKey::try_from(fixed.api_key) else {
        return unthrottled(Reply::Close(format!("unknown api key {}", fixed.api_key)));
    };
    let version = fixed.api_version;
    if !api::handles(api, version) {
        return unthrottled(match api {
            ApiKey::ApiVersions => handlers::api_versions::unsupported(fixed.correlation_id),
            ApiKey::Produce if (0..=2).contains(&version) => {
                handlers::produce_legacy::unsupported(frame, version, fixed.correlation_id)
            }
            _ => Reply::Close(format!("unsupported version {version} of {api:?}")),
        });
    }
    let mut body = frame;
    let header = match RequestHeader::decode(&mut body, api.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => return unthrottled(Reply::Close(format!("cannot decode request header: {e}"))),
    };
    let corr = fixed.correlation_id;
    let ctx = RequestContext {
        header,
        peer: caller.peer,
        listener: Arc::clone(&caller.listener),
        principal: Arc::clone(&caller.principal),
    };
    if api == ApiKey::Produce {
        return produce(broker, version, corr, body, ctx, size).await;
    }
    let (reply, throttle) = route!(broker, api, version, corr, body, ctx, size, {
        ApiVersions => ApiVersionsRequest => handlers::api_versions::handle,
        Metadata => MetadataRequest => handlers::metadata::handle,
        Fetch => FetchRequest => handlers::fetch::handle,
        ListOffsets => ListOffsetsRequest => handlers::list_offsets::handle,
        CreateTopics => CreateTopicsRequest => handlers::create_topics::handle,
        DeleteTopics => DeleteTopicsRequest => handlers::delete_topics::handle,
        CreatePartitions => CreatePartitionsRequest => handlers::create_partitions::handle,
        DescribeConfigs => DescribeConfigsRequest => handlers::describe_configs::handle,
        AlterConfigs => AlterConfigsRequest => handlers::alter_configs::handle,
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest => handlers::alter_configs::handle_incremental,
        DescribeCluster => DescribeClusterRequest => handlers::describe_cluster::handle,
        DeleteRecords => DeleteRecordsRequest => handlers::delete_records::handle,
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest => handlers::offset_for_leader_epoch::handle,
        InitProducerId => InitProducerIdRequest => handlers::init_producer_id::handle,
        FindCoordinator => FindCoordinatorRequest => handlers::find_coordinator::handle,
        JoinGroup => JoinGroupRequest => handlers::join_group::handle,
        SyncGroup => SyncGroupRequest => handlers::sync_group::handle,
        Heartbeat => HeartbeatRequest => handlers::heartbeat::handle,
        LeaveGroup => LeaveGroupRequest => handlers::leave_group::handle,
        OffsetCommit => OffsetCommitRequest => handlers::offset_commit::handle,
        OffsetFetch => OffsetFetchRequest => handlers::offset_fetch::handle,
        ListGroups => ListGroupsRequest => handlers::list_groups::handle,
        DescribeGroups => DescribeGroupsRequest => handlers::describe_groups::handle,
        DeleteGroups => DeleteGroupsRequest => handlers::delete_groups::handle,
        OffsetDelete => OffsetDeleteRequest => handlers::offset_delete::handle,
        AddPartitionsToTxn => AddPartitionsToTxnRequest => handlers::add_partitions_to_txn::handle,
        AddOffsetsToTxn => AddOffsetsToTxnRequest => handlers::add_offsets_to_txn::handle,
        EndTxn => EndTxnRequest => handlers::end_txn::handle,
        TxnOffsetCommit => TxnOffsetCommitRequest => handlers::txn_offset_commit::handle,
        DescribeTransactions => DescribeTransactionsRequest => handlers::describe_transactions::handle,
        ListTransactions => ListTransactionsRequest => handlers::list_transactions::handle,
        DescribeProducers => DescribeProducersRequest => handlers::describe_producers::handle,
        CreateAcls => CreateAclsRequest => handlers::acls::create,
        DescribeAcls => DescribeAclsRequest => handlers::acls::describe,
        DeleteAcls => DeleteAclsRequest => handlers::acls::delete,
        DescribeUserScramCredentials => DescribeUserScramCredentialsRequest => handlers::scram_credentials::describe,
        AlterUserScramCredentials => AlterUserScramCredentialsRequest => handlers::scram_credentials::alter,
        DescribeClientQuotas => DescribeClientQuotasRequest => handlers::client_quotas::describe,
        AlterClientQuotas => AlterClientQuotasRequest => handlers::client_quotas::alter,
    });
    if body.has_remaining() {
        tracing::debug!(
            ?api,
            version,
            trailing = body.remaining(),
            "request had trailing bytes"
        );
    }
    (Dispatched::Ready(reply), throttle)
}
