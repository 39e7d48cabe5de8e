//! AlterConfigs (replace a topic's overrides wholesale) and IncrementalAlterConfigs (SET, DELETE, APPEND,
//! SUBTRACT per key). Values are validated with the same table as topic creation. Broker configs are static.
//! Each resource needs ALTER_CONFIGS on it (on the cluster for broker-wide ones) before anything else is
//! checked, as Kafka's controller does (`ControllerApis.authorizeAlterResource`); broker loggers need
//! CLUSTER_ACTION (`RuntimeLoggerManager`).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{
    config_refusal, RESOURCE_BROKER, RESOURCE_BROKER_LOGGER, RESOURCE_TOPIC,
};
use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::error_code::code_and_message;
use crate::request::RequestContext;
use crate::security::acl::Operation;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// Applies a change to a topic's overrides; returns the error code and message for the resource.
fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &StrBytes,
    validate_only: bool,
    change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), String>,
) -> (i16, Option<StrBytes>) {
    match resource_type {
        RESOURCE_TOPIC => {}
        RESOURCE_BROKER => {
            return (
                ResponseError::InvalidRequest.code(),
                Some(str_bytes(
                    "Runnel's broker configs are static: set them with --set or the config file",
                )),
            )
        }
        _ => {
            return (
                ResponseError::InvalidRequest.code(),
                Some(str_bytes("Unsupported resource type")),
            )
        }
    }
    let Some(meta) = broker.topic_meta(name) else {
        return (
            ResponseError::UnknownTopicOrPartition.code(),
            Some(str_bytes(&format!("Topic {} does not exist.", &**name))),
        );
    };
    let mut configs = meta.configs.clone();
    if let Err(msg) = change(&mut configs) {
        return (ResponseError::InvalidConfig.code(), Some(str_bytes(&msg)));
    }
    match broker.set_topic_configs(name, configs, validate_only) {
        Ok(_) => (ErrorCode::NONE.code(), None),
        Err(e) => code_and_message(&e),
    }
}

pub async fn handle(
    broker: &Broker,
    req: AlterConfigsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<AlterConfigsResponse> {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let refused = config_refusal(
                broker,
                ctx,
                Operation::AlterConfigs,
                r.resource_type,
                &r.resource_name,
            )
            // Kafka's legacy AlterConfigs has no broker-logger resource: it refuses the type unchecked.
            .filter(|_| r.resource_type != RESOURCE_BROKER_LOGGER);
            let (code, msg) = match refused {
                Some((code, msg)) => (code, Some(msg)),
                None => apply(
                    broker,
                    r.resource_type,
                    &r.resource_name,
                    req.validate_only,
                    |configs| {
                        configs.clear();
                        for c in &r.configs {
                            let v = c
                                .value
                                .as_ref()
                                .ok_or_else(|| format!("Null value for {}", &*c.name))?;
                            configs.insert(c.name.to_string(), v.to_string());
                        }
                        Ok(())
                    },
                ),
            };
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        })
        .collect();
    Some(AlterConfigsResponse::default().with_responses(responses))
}

pub async fn handle_incremental(
    broker: &Broker,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<IncrementalAlterConfigsResponse> {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let op = if r.resource_type == RESOURCE_BROKER_LOGGER {
                Operation::ClusterAction
            } else {
                Operation::AlterConfigs
            };
            let refused = config_refusal(broker, ctx, op, r.resource_type, &r.resource_name);
            let (code, msg) = match refused {
                Some((code, msg)) => (code, Some(msg)),
                None => apply(
                    broker,
                    r.resource_type,
                    &r.resource_name,
                    req.validate_only,
                    |configs| {
                        for c in &r.configs {
                            let name = c.name.to_string();
                            let value = c.value.as_ref().map(|v| v.to_string());
                            match (c.config_operation, value) {
                                (OP_SET, Some(v)) => {
                                    configs.insert(name, v);
                                }
                                (OP_DELETE, _) => {
                                    configs.remove(&name);
                                }
                                (OP_APPEND, Some(v)) => {
                                    let current = configs.get(&name).cloned().or_else(|| {
                                        runnel_storage::config::topic_config_def(&name)
                                            .map(|d| d.default.to_string())
                                    });
                                    let mut items: Vec<String> = current
                                        .iter()
                                        .flat_map(|c| c.split(','))
                                        .map(|s| s.trim().to_string())
                                        .filter(|s| !s.is_empty())
                                        .collect();
                                    for item in v.split(',').map(str::trim) {
                                        if !items.iter().any(|i| i == item) {
                                            items.push(item.to_string());
                                        }
                                    }
                                    configs.insert(name, items.join(","));
                                }
                                (OP_SUBTRACT, Some(v)) => {
                                    let remove: Vec<&str> = v.split(',').map(str::trim).collect();
                                    let current = configs.get(&name).cloned().unwrap_or_default();
                                    let kept: Vec<&str> = current
                                        .split(',')
                                        .map(str::trim)
                                        .filter(|i| !i.is_empty() && !remove.contains(i))
                                        .collect();
                                    configs.insert(name, kept.join(","));
                                }
                                (op, _) => {
                                    return Err(format!(
                                        "Invalid config operation {op} or missing value for {name}"
                                    ))
                                }
                            }
                        }
                        Ok(())
                    },
                ),
            };
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        })
        .collect();
    Some(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
