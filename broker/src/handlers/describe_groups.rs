//! DescribeGroups: state, protocol, members with their subscriptions and assignments. An unknown group is
//! described as Dead, as Kafka does for these versions.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{opt_str, str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: DescribeGroupsRequest,
    version: i16,
    _ctx: &RequestContext,
) -> Option<DescribeGroupsResponse> {
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let g = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_error_code(ErrorCode::NONE.code());
            let g = if version >= 3 {
                g.with_authorized_operations(i32::MIN)
            } else {
                g
            };
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
