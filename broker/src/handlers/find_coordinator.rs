//! FindCoordinator: this node coordinates every group (and, later, every transactional id).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;

pub async fn handle(
    broker: &Broker,
    req: FindCoordinatorRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<FindCoordinatorResponse> {
    let valid = matches!(req.key_type, KEY_GROUP | KEY_TRANSACTION);
    let code = if valid {
        ErrorCode::NONE.code()
    } else {
        ResponseError::InvalidRequest.code()
    };
    let (node, port) = if valid {
        (broker.node_id, ctx.listener.advertised_port)
    } else {
        (-1, -1)
    };
    let host = if valid {
        str_bytes(&ctx.listener.advertised_host)
    } else {
        str_bytes("")
    };
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(BrokerId(node))
                    .with_host(host.clone())
                    .with_port(port)
                    .with_error_code(code)
            })
            .collect();
        return Some(FindCoordinatorResponse::default().with_coordinators(coordinators));
    }
    Some(
        FindCoordinatorResponse::default()
            .with_error_code(code)
            .with_node_id(BrokerId(node))
            .with_host(host)
            .with_port(port),
    )
}
