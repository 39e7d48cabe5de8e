//! CreatePartitions: grows a topic; explicit assignments are checked as in [`replica_assignment`]. Each
//! topic needs ALTER, checked before anything else about it, as Kafka's controller does.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::authz::allowed_names;
use super::{replica_assignment, str_bytes, ErrorCode};
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
    // Any live broker may be named in an assignment (in a cluster every one serves every partition).
    let brokers = broker.brokers_for(&ctx.listener);
    let mut results = Vec::new();
    for t in req.topics {
        results.push(async {
            let r = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if !alterable.contains(&**t.name) {
                return r.with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            let mut assignments = BTreeMap::new();
            // As in Kafka: explicit assignments must name one replica list per added partition.
            if let (Some(named), Some(meta)) = (&t.assignments, broker.topic_meta(&t.name)) {
                let added = (t.count - meta.partitions).max(0) as usize;
                if named.len() != added {
                    return r
                        .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                        .with_error_message(Some(str_bytes(&format!(
                            "Attempted to add {added} additional partition(s), but only {} assignment(s) were specified.",
                            named.len()
                        ))));
                }
                // Stored at creation as the length of the named lists, when there were any.
                let existing = usize::try_from(meta.replication_factor).unwrap_or(1);
                match replica_assignment::checked(
                    named.iter().map(|a| &a.broker_ids),
                    meta.partitions,
                    Some(existing),
                    &brokers,
                ) {
                    Ok(checked) => assignments = checked,
                    Err(message) => {
                        return r
                            .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                            .with_error_message(Some(str_bytes(&message)))
                    }
                }
            }
            match broker.create_partitions(&t.name, t.count, assignments, req.validate_only).await {
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
