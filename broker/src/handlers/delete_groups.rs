//! DeleteGroups: removes empty groups with their committed offsets. Each group needs DELETE; as in Kafka's
//! `handleDeleteGroupsRequest` the refused ones are answered after the others.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: DeleteGroupsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DeleteGroupsResponse> {
    // Kafka answers each named group once, however often it is named.
    let mut seen = std::collections::HashSet::new();
    let (allowed, refused): (Vec<_>, Vec<_>) = req
        .groups_names
        .into_iter()
        .filter(|g| seen.insert(g.clone()))
        .partition(|g| ctx.allowed(broker, Operation::Delete, ResourceType::Group, g));
    let mut deleted = Vec::with_capacity(allowed.len());
    for g in allowed {
        let code = match broker.hold(&broker.groups, &g).await {
            Err(code) => code,
            Ok(_) => match tokio::task::block_in_place(|| broker.groups.delete_group(&g)) {
                0 => broker.durable(&broker.groups, &g).await.err().unwrap_or(0),
                code => code,
            },
        };
        deleted.push(
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(code),
        );
    }
    let refused = refused.into_iter().map(|g| {
        DeletableGroupResult::default()
            .with_group_id(g)
            .with_error_code(ResponseError::GroupAuthorizationFailed.code())
    });
    let results = deleted.into_iter().chain(refused).collect();
    Some(DeleteGroupsResponse::default().with_results(results))
}
