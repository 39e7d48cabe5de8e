//! LeaveGroup: one member (v0-2) or a batch of members by id or group.instance.id (v3+). READ on the group
//! is needed; a refusal is one top-level code with no member answers, as Kafka sends it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::opt_str;
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: LeaveGroupRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<LeaveGroupResponse> {
    if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
        return Some(
            LeaveGroupResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
        );
    }
    if let Err(code) = broker.hold(&broker.groups, &req.group_id).await {
        return Some(LeaveGroupResponse::default().with_error_code(code));
    }
    if version < 3 {
        let codes = broker
            .groups
            .leave(&req.group_id, &[(req.member_id.to_string(), None)]);
        if let Err(code) = broker.durable(&broker.groups, &req.group_id).await {
            return Some(LeaveGroupResponse::default().with_error_code(code));
        }
        return Some(
            LeaveGroupResponse::default().with_error_code(codes.first().copied().unwrap_or(0)),
        );
    }
    let members: Vec<(String, Option<String>)> = req
        .members
        .iter()
        .map(|m| {
            (
                m.member_id.to_string(),
                m.group_instance_id.as_ref().map(|s| s.to_string()),
            )
        })
        .collect();
    let codes = broker.groups.leave(&req.group_id, &members);
    if let Err(code) = broker.durable(&broker.groups, &req.group_id).await {
        return Some(LeaveGroupResponse::default().with_error_code(code));
    }
    let responses = members
        .iter()
        .zip(codes)
        .map(|((id, inst), code)| {
            MemberResponse::default()
                .with_member_id(super::str_bytes(id))
                .with_group_instance_id(opt_str(inst))
                .with_error_code(code)
        })
        .collect();
    Some(LeaveGroupResponse::default().with_members(responses))
}
