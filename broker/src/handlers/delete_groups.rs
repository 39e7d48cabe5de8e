//! DeleteGroups: removes empty groups with their committed offsets.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    req: DeleteGroupsRequest,
    _version: i16,
    _ctx: &RequestContext,
) -> Option<DeleteGroupsResponse> {
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let code = tokio::task::block_in_place(|| broker.groups.delete_group(&g));
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(code)
        })
        .collect();
    Some(DeleteGroupsResponse::default().with_results(results))
}
