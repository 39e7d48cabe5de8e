//! CreateTopics: validated against the catalog's rules; `validate_only` checks without creating.
//! Replication factors past the live brokers and replica assignments naming unknown brokers are refused
//! (see [`replica_assignment`]); what is accepted is what Metadata lists.
//! Authorization as in Kafka's controller (`ControllerApis.createTopics`): CREATE on the cluster or on the
//! topic, else TOPIC_AUTHORIZATION_FAILED; a created topic's configs are returned only with
//! DESCRIBE_CONFIGS on it (`topic_config_error_code` otherwise).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::authz::allowed_names;
use super::{replica_assignment, str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::handlers::describe_configs::topic_entries;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};
use crate::topics::Replicas;

pub async fn handle(
    broker: &Broker,
    req: CreateTopicsRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<CreateTopicsResponse> {
    let names = || req.topics.iter().map(|t| &**t.name);
    let creatable = (!ctx.allowed_on_cluster(broker, Operation::Create))
        .then(|| allowed_names(broker, ctx, Operation::Create, ResourceType::Topic, names()));
    let describable = allowed_names(
        broker,
        ctx,
        Operation::DescribeConfigs,
        ResourceType::Topic,
        names(),
    );
    let mut topics = Vec::new();
    for t in req.topics {
        topics.push(
            async {
                let mut result = CreatableTopicResult::default().with_name(t.name.clone());
                if creatable.as_ref().is_some_and(|c| !c.contains(&**t.name)) {
                    result.error_code = ResponseError::TopicAuthorizationFailed.code();
                    result.error_message = Some(str_bytes("Authorization failed."));
                    return result;
                }
                let fail = |mut r: CreatableTopicResult, code: i16, msg: String| {
                    r.error_code = code;
                    r.error_message = Some(str_bytes(&msg));
                    if version >= 5 {
                        r.num_partitions = -1;
                        r.replication_factor = -1;
                    }
                    r
                };
                // In a cluster, records are as durable as object storage makes them whatever the factor:
                // it is accepted up to the live brokers, as Kafka accepts it, and each partition has one
                // "replica".
                let brokers = broker.brokers_for(&ctx.listener);
                if i64::from(t.replication_factor) > brokers.len() as i64 {
                    return fail(
                        result,
                        ResponseError::InvalidReplicationFactor.code(),
                        format!(
                            "Replication factor: {} larger than available brokers: {}.",
                            t.replication_factor,
                            brokers.len()
                        ),
                    );
                }
                let mut partitions = t.num_partitions;
                let mut replicas = Replicas {
                    factor: t.replication_factor,
                    assignments: BTreeMap::new(),
                };
                if !t.assignments.is_empty() {
                    if partitions != -1 || t.replication_factor != -1 {
                        return fail(
                        result,
                        ResponseError::InvalidRequest.code(),
                        "Both numPartitions or replicationFactor and replicasAssignments were set."
                            .into(),
                    );
                    }
                    let mut named: Vec<_> = t.assignments.iter().collect();
                    named.sort_by_key(|a| a.partition_index);
                    if named
                        .iter()
                        .zip(0..)
                        .any(|(a, expected)| a.partition_index != expected)
                    {
                        return fail(
                            result,
                            ResponseError::InvalidReplicaAssignment.code(),
                            "Partitions should be a consecutive 0-based integer sequence.".into(),
                        );
                    }
                    match replica_assignment::checked(
                        named.iter().map(|a| &a.broker_ids),
                        0,
                        None,
                        &brokers,
                    ) {
                        Ok(assignments) => replicas.assignments = assignments,
                        Err(message) => {
                            return fail(
                                result,
                                ResponseError::InvalidReplicaAssignment.code(),
                                message,
                            )
                        }
                    }
                    partitions = t.assignments.len() as i32;
                }
                let mut configs = BTreeMap::new();
                for c in &t.configs {
                    match &c.value {
                        Some(v) => {
                            configs.insert(c.name.to_string(), v.to_string());
                        }
                        None => {
                            return fail(
                                result,
                                ResponseError::InvalidConfig.code(),
                                format!("Null value not supported for topic configs: {}", &*c.name),
                            );
                        }
                    }
                }
                match broker
                    .create_topic(&t.name, partitions, configs, replicas, req.validate_only)
                    .await
                {
                    Ok(meta) => {
                        result.error_code = ErrorCode::NONE.code();
                        if version >= 7 {
                            result.topic_id = meta.id;
                        }
                        if version >= 5 && !describable.contains(&**t.name) {
                            result.topic_config_error_code =
                                ResponseError::TopicAuthorizationFailed.code();
                        } else if version >= 5 {
                            result.num_partitions = meta.partitions;
                            result.replication_factor = meta.replication_factor;
                            result.configs = Some(
                                topic_entries(broker, &meta.configs, None)
                                    .into_iter()
                                    .map(|e| {
                                        CreatableTopicConfigs::default()
                                            .with_name(e.name)
                                            .with_value(e.value)
                                            .with_read_only(e.read_only)
                                            .with_config_source(e.config_source)
                                            .with_is_sensitive(e.is_sensitive)
                                    })
                                    .collect(),
                            );
                        }
                        result
                    }
                    Err(e) => fail(result, ErrorCode::from(&e).code(), e.to_string()),
                }
            }
            .await,
        );
    }
    Some(CreateTopicsResponse::default().with_topics(topics))
}
