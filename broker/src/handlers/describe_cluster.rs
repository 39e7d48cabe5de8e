//! DescribeCluster: this node as the only broker and the controller.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;

pub async fn handle(
    broker: &Broker,
    _req: DescribeClusterRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DescribeClusterResponse> {
    Some(
        DescribeClusterResponse::default()
            .with_error_code(ErrorCode::NONE.code())
            .with_cluster_id(str_bytes(&broker.cluster_id))
            .with_controller_id(BrokerId(broker.node_id))
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.node_id))
                .with_host(str_bytes(&ctx.listener.advertised_host))
                .with_port(ctx.listener.advertised_port)])
            .with_cluster_authorized_operations(i32::MIN),
    )
}
