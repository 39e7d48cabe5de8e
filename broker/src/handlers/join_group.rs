//! JoinGroup: answered once the group's rebalance completes (or at once for MEMBER_ID_REQUIRED, errors and
//! static members rejoining unchanged). READ on the group is needed, as in Kafka's `handleJoinGroupRequest`.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{opt_str, str_bytes};
use crate::broker::Broker;
use crate::groups::group::JoinOutcome;
use crate::groups::{JoinParams, Pending};
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: JoinGroupRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<JoinGroupResponse> {
    if !ctx.allowed(broker, Operation::Read, ResourceType::Group, &req.group_id) {
        // JoinGroupRequest.getErrorResponse: no generation, no member, an empty (v7+: null) protocol.
        return Some(
            JoinGroupResponse::default()
                .with_error_code(ResponseError::GroupAuthorizationFailed.code())
                .with_protocol_name((version < 7).then(|| str_bytes(""))),
        );
    }
    if let Err(code) = broker.hold(&broker.groups, &req.group_id).await {
        return Some(
            JoinGroupResponse::default()
                .with_error_code(code)
                .with_protocol_name((version < 7).then(|| str_bytes(""))),
        );
    }
    let params = JoinParams {
        group_id: req.group_id.to_string(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        client_id: ctx.client_id(),
        client_host: format!("/{}", ctx.peer.ip()),
        version,
    };
    let member_id = params.member_id.clone();
    let outcome = match broker.groups.join(params) {
        Pending::Ready(o) => o,
        Pending::Wait(rx) => rx.await.unwrap_or_else(|_| JoinOutcome {
            error: ResponseError::UnknownMemberId.code(),
            member_id,
            generation: -1,
            ..Default::default()
        }),
    };
    let members = outcome
        .members
        .iter()
        .map(|(id, inst, meta)| {
            let mut m = JoinGroupResponseMember::default()
                .with_member_id(str_bytes(id))
                .with_metadata(meta.clone());
            if version >= 5 {
                m.group_instance_id = opt_str(inst);
            }
            m
        })
        .collect();
    let mut resp = JoinGroupResponse::default()
        .with_error_code(outcome.error)
        .with_generation_id(outcome.generation)
        .with_protocol_name(
            opt_str(&outcome.protocol_name).or_else(|| (version < 7).then(|| str_bytes(""))),
        )
        .with_leader(str_bytes(&outcome.leader))
        .with_member_id(str_bytes(&outcome.member_id))
        .with_members(members);
    if version >= 7 {
        resp.protocol_type = opt_str(&outcome.protocol_type);
    }
    if version >= 9 {
        resp.skip_assignment = outcome.skip_assignment;
    }
    Some(resp)
}
