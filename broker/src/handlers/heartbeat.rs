//! Heartbeat: keeps a member's session alive and tells it when a rebalance started.

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: HeartbeatRequest,
    _version: i16,
    _ctx: &RequestContext,
) -> Option<HeartbeatResponse> {
    let code = broker.groups.heartbeat(
        &req.group_id,
        req.generation_id,
        &req.member_id,
        req.group_instance_id.as_deref(),
    );
    Some(HeartbeatResponse::default().with_error_code(code))
}
