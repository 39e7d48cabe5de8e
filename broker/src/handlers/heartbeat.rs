//! Heartbeat: keeps a member's session alive and tells it when a rebalance started. READ on the group is
//! needed, as in Kafka's `handleHeartbeatRequest`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: HeartbeatRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<HeartbeatResponse> {
    if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
        return Some(
            HeartbeatResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        );
    }
    if let Err(code) = broker.hold(&broker.groups, &req.group_id).await {
        return Some(HeartbeatResponse::default().with_error_code(code));
    }
    let code = broker.groups.heartbeat(
        &req.group_id,
        req.generation_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
    );
    Some(HeartbeatResponse::default().with_error_code(code))
}
