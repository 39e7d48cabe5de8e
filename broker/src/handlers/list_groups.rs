//! ListGroups: every group, optionally filtered by state (v4+) and type (v5+: all are "classic"). With
//! DESCRIBE on the cluster every group is listed, otherwise only those the principal may DESCRIBE, as in
//! Kafka's `handleListGroupsRequest`.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: ListGroupsRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<ListGroupsResponse> {
    let all_visible = ctx.allowed_on_cluster(broker, Operation::Describe);
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_string()).collect();
    let classic_wanted = req.types_filter.is_empty()
        || req
            .types_filter
            .iter()
            .any(|t| t.eq_ignore_ascii_case("classic"));
    let groups = if classic_wanted {
        broker.groups.list(&states)
    } else {
        Vec::new()
    };
    let groups = groups
        .into_iter()
        .filter(|(id, _, _)| {
            all_visible || ctx.allowed(broker, Operation::Describe, ResourceType::Group, id)
        })
        .map(|(id, protocol_type, state)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(str_bytes(&id)))
                .with_protocol_type(str_bytes(&protocol_type));
            if version >= 4 {
                g.group_state = str_bytes(state);
            }
            if version >= 5 {
                g.group_type = str_bytes("classic");
            }
            g
        })
        .collect();
    Some(
        ListGroupsResponse::default()
            .with_error_code(ErrorCode::NONE.code())
            .with_groups(groups),
    )
}
