//! DescribeGroups: state, protocol, members with their subscriptions and assignments. An unknown group is
//! described as Dead, as Kafka does for these versions. Each group needs DESCRIBE (else
//! GROUP_AUTHORIZATION_FAILED for it alone); its authorized operations are filled in when asked for (v3+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::authz::{authorized_operations, OPS_NOT_REQUESTED};
use super::{opt_str, str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: DescribeGroupsRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<DescribeGroupsResponse> {
    let want_ops = version >= 3 && req.include_authorized_operations;
    // In a cluster each group is described by the broker holding it; a group the principal may not
    // describe is refused before that, so asking never moves a group to this broker.
    let mut refused = std::collections::HashMap::new();
    for id in &req.groups {
        if !ctx.allowed(broker, Operation::Describe, ResourceType::Group, id) {
            refused.insert(id.clone(), ResponseError::GroupAuthorizationFailed.code());
        } else if let Err(code) = broker.hold(&broker.groups, id).await {
            refused.insert(id.clone(), code);
        }
    }
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let g = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(OPS_NOT_REQUESTED);
            if let Some(&code) = refused.get(&id) {
                // DescribeGroupsResponse.groupError: empty state and protocol, no members.
                return g
                    .with_error_code(code)
                    .with_group_state(str_bytes(""))
                    .with_protocol_type(str_bytes(""))
                    .with_protocol_data(str_bytes(""));
            }
            let mut g = g.with_error_code(ErrorCode::NONE.code());
            if want_ops {
                g.authorized_operations =
                    authorized_operations(broker, ctx, ResourceType::Group, &id);
            }
            match broker.groups.describe(&id) {
                None => g
                    .with_group_state(str_bytes("Dead"))
                    .with_protocol_type(str_bytes(""))
                    .with_protocol_data(str_bytes("")),
                Some(d) => g
                    .with_group_state(str_bytes(d.state.name()))
                    .with_protocol_type(str_bytes(&d.protocol_type))
                    .with_protocol_data(str_bytes(&d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|(mid, inst, client, host, meta, assignment)| {
                                let mut m = DescribedGroupMember::default()
                                    .with_member_id(str_bytes(&mid))
                                    .with_client_id(str_bytes(&client))
                                    .with_client_host(str_bytes(&host))
                                    .with_member_metadata(meta)
                                    .with_member_assignment(assignment);
                                if version >= 4 {
                                    m.group_instance_id = opt_str(&inst);
                                }
                                m
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    Some(DescribeGroupsResponse::default().with_groups(groups))
}
