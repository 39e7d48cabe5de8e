//! FindCoordinator: this node coordinates every group (and, later, every transactional id). Each key
//! needs DESCRIBE on its group or transactional id, as in Kafka's `getCoordinator`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

/// The error for one key, with the message Kafka's pre-batching versions carry; None when this node
/// answers for it.
fn key_error(
    broker: &Broker,
    ctx: &RequestContext,
    key_type: i8,
    key: &str,
) -> Option<(ResponseError, Option<&'static str>)> {
    let (resource_type, error, message) = match key_type {
        KEY_GROUP => (
            ResourceType::Group,
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.",
        ),
        KEY_TRANSACTION => (
            ResourceType::TransactionalId,
            ResponseError::TransactionalIdAuthorizationFailed,
            "Transactional Id authorization failed.",
        ),
        _ => return Some((ResponseError::InvalidRequest, None)),
    };
    (!ctx.allowed(broker, Operation::Describe, resource_type, key))
        .then_some((error, Some(message)))
}

pub async fn handle(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<FindCoordinatorResponse> {
    let brokers = broker.brokers_for(&ctx.listener);
    // The owner's address on this listener (this broker's own when the owner is not listed).
    let owner = |key: &str| {
        let id = broker.coordinator_node(req.key_type, key);
        brokers
            .iter()
            .find(|b| b.node_id == id)
            .or_else(|| brokers.iter().find(|b| b.node_id == broker.node_id))
            .map(|b| (BrokerId(b.node_id), str_bytes(&b.host), b.port))
            .unwrap_or((
                BrokerId(broker.node_id),
                str_bytes(&ctx.listener.advertised_host),
                ctx.listener.advertised_port,
            ))
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let c = Coordinator::default().with_key(key.clone());
                match key_error(broker, ctx, req.key_type, &key) {
                    Some((e, _)) => c
                        .with_error_code(e.code())
                        .with_node_id(BrokerId(-1))
                        .with_host(StrBytes::default())
                        .with_port(-1),
                    None => {
                        let (id, host, port) = owner(&key);
                        c.with_error_code(ErrorCode::NONE.code())
                            .with_node_id(id)
                            .with_host(host)
                            .with_port(port)
                    }
                }
            })
            .collect();
        return Some(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    let resp = FindCoordinatorResponse::default();
    let resp_message = resp.error_message.clone();
    Some(match key_error(broker, ctx, req.key_type, &req.key) {
        Some((e, message)) => resp
            .with_error_code(e.code())
            .with_error_message(message.map(str_bytes).or(resp_message))
            .with_node_id(BrokerId(-1))
            .with_host(StrBytes::default())
            .with_port(-1),
        None => {
            let (id, host, port) = owner(&req.key);
            resp.with_error_code(ErrorCode::NONE.code())
                .with_node_id(id)
                .with_host(host)
                .with_port(port)
        }
    })
}
