//! DescribeCluster: this node as the only broker and the controller. Kafka refuses no one here
//! (`AuthHelper.computeDescribeClusterResponse`): DESCRIBE on the cluster only decides what
//! `cluster_authorized_operations` says when asked for (the bit field with it, 0 without).

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::authz::{authorized_operations, OPS_NOT_REQUESTED};
use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::request::{RequestContext, CLUSTER_RESOURCE};
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: DescribeClusterRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<DescribeClusterResponse> {
    let ops = if !req.include_cluster_authorized_operations {
        OPS_NOT_REQUESTED
    } else if ctx.allowed_on_cluster(broker, Operation::Describe) {
        authorized_operations(broker, ctx, ResourceType::Cluster, CLUSTER_RESOURCE)
    } else {
        0
    };
    Some(
        DescribeClusterResponse::default()
            .with_error_code(ErrorCode::NONE.code())
            .with_cluster_id(str_bytes(&broker.cluster_id))
            .with_controller_id(BrokerId(broker.controller_node()))
            .with_brokers(
                broker
                    .brokers_for(&ctx.listener)
                    .into_iter()
                    .map(|b| {
                        DescribeClusterBroker::default()
                            .with_broker_id(BrokerId(b.node_id))
                            .with_host(str_bytes(&b.host))
                            .with_port(b.port)
                            .with_rack(b.rack.as_deref().map(str_bytes))
                    })
                    .collect(),
            )
            .with_cluster_authorized_operations(ops),
    )
}
