//! CreatePartitions: grows a topic; explicit assignments must name this node only. Each topic needs
//! ALTER, checked before anything else about it, as Kafka's controller does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::authz::allowed_names;
use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::error_code::code_and_message;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub async fn handle(
    broker: &Broker,
    req: CreatePartitionsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<CreatePartitionsResponse> {
    let alterable = allowed_names(
        broker,
        ctx,
        Operation::Alter,
        ResourceType::Topic,
        req.topics.iter().map(|t| &**t.name),
    );
    // Any live broker may be named in an assignment (in a cluster every one serves every partition), as
    // for CreateTopics.
    let brokers = broker.brokers_for(&ctx.listener);
    let mut results = Vec::new();
    for t in req.topics {
        results.push(async {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if !alterable.contains(&**t.name) {
                return r.with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            let bad_assignment = t.assignments.as_ref().is_some_and(|a| {
                a.iter().any(|x| {
                    x.broker_ids
                        .iter()
                        .any(|b| !brokers.iter().any(|known| known.node_id == b.0))
                })
            });
            if bad_assignment {
                return r
                    .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                    .with_error_message(Some(str_bytes("Unknown broker in replica assignment.")));
            }
            // As in Kafka: explicit assignments must name one replica list per added partition.
            if let (Some(assignments), Some(meta)) = (&t.assignments, broker.topic_meta(&t.name)) {
                let added = (t.count - meta.partitions).max(0) as usize;
                if assignments.len() != added {
                    return r
                        .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                        .with_error_message(Some(str_bytes(&format!(
                            "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                            assignments.len()
                        ))));
                }
            }
            match broker.create_partitions(&t.name, t.count, req.validate_only).await {
                Ok(_) => r.with_error_code(ErrorCode::NONE.code()),
                Err(e) => {
                    let (code, message) = code_and_message(&e);
                    r.with_error_code(code).with_error_message(message)
                }
            }
        }
        .await);
    }
    Some(CreatePartitionsResponse::default().with_results(results))
}
