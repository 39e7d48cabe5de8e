//! SyncGroup: the leader hands in the assignment; every member gets its own part once it has. READ on the
//! group is needed, checked after the v5+ protocol fields as in Kafka's `handleSyncGroupRequest`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::opt_str;
use crate::broker::Broker;
use crate::groups::group::SyncOutcome;
use crate::groups::{Pending, SyncParams};
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: SyncGroupRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<SyncGroupResponse> {
    let refused = if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        Some(ResponseError::InconsistentGroupProtocol)
    } else if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(e) = refused {
        return Some(SyncGroupResponse::default().with_error_code(e.code()));
    }
    if let Err(code) = broker.hold(&broker.groups, &req.group_id).await {
        return Some(SyncGroupResponse::default().with_error_code(code));
    }
    let params = SyncParams {
        group_id: req.group_id.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let outcome = match broker.groups.sync(params) {
        Pending::Ready(o) => o,
        Pending::Wait(rx) => rx.await.unwrap_or_else(|_| SyncOutcome {
            error: ResponseError::RebalanceInProgress.code(),
            ..Default::default()
        }),
    };
    // The assignment is answered only once the group's new generation is in the database (a cluster).
    if outcome.error == 0 {
        if let Err(code) = broker.durable(&broker.groups, &req.group_id).await {
            return Some(SyncGroupResponse::default().with_error_code(code));
        }
    }
    let mut resp = SyncGroupResponse::default()
        .with_error_code(outcome.error)
        .with_assignment(outcome.assignment);
    if version >= 5 {
        resp.protocol_type = opt_str(&outcome.protocol_type);
        resp.protocol_name = opt_str(&outcome.protocol_name);
    }
    Some(resp)
}
