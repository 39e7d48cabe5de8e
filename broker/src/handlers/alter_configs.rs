//! AlterConfigs (replace a topic's overrides wholesale) and IncrementalAlterConfigs (SET, DELETE, APPEND,
//! SUBTRACT per key). Topic values are validated with the same table as topic creation; broker resources
//! change the dynamic layers (`crate::dynamic_config`): "" for every broker, the node id for this one.
//! Each resource needs ALTER_CONFIGS on it (on the cluster for broker-wide ones) before anything else is
//! checked, as Kafka's controller does (`ControllerApis.authorizeAlterResource`); broker loggers need
//! CLUSTER_ACTION (`RuntimeLoggerManager`).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_request, incremental_alter_configs_response,
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
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

/// A change to a resource's key/value map. The second argument gives a key's current effective value
/// when the map does not hold it (what APPEND extends).
type Change<'a> =
    Box<dyn FnOnce(&mut Config, &dyn Fn(&str) -> Option<String>) -> Result<(), String> + Send + 'a>;
type Config = BTreeMap<String, String>;

fn invalid_request(msg: &str) -> (i16, Option<StrBytes>) {
    (ResponseError::InvalidRequest.code(), Some(str_bytes(msg)))
}

/// Applies a change to a resource; returns the error code and message for it.
async fn apply(
    broker: &Broker,
    resource_type: i8,
    name: &StrBytes,
    validate_only: bool,
    change: Change<'_>,
) -> (i16, Option<StrBytes>) {
    match resource_type {
        RESOURCE_TOPIC => apply_to_topic(broker, name, validate_only, change).await,
        RESOURCE_BROKER => apply_to_broker(broker, name, validate_only, change).await,
        _ => invalid_request("Unsupported resource type"),
    }
}

async fn apply_to_topic(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    change: Change<'_>,
) -> (i16, Option<StrBytes>) {
    let Some(meta) = broker.topic_meta(name) else {
        return (
            ResponseError::UnknownTopicOrPartition.code(),
            Some(str_bytes(&format!("Topic {name} does not exist."))),
        );
    };
    let mut configs = meta.configs.clone();
    let default =
        |k: &str| runnel_storage::config::topic_config_def(k).map(|d| d.default.to_string());
    if let Err(msg) = change(&mut configs, &default) {
        return (ResponseError::InvalidConfig.code(), Some(str_bytes(&msg)));
    }
    match broker.set_topic_configs(name, configs, validate_only).await {
        Ok(_) => (ErrorCode::NONE.code(), None),
        Err(e) => code_and_message(&e),
    }
}

/// The change is worked out on the layer as it is when it is stored (on a cluster: the newest version,
/// with the layer's row locked), so changes made through different brokers at once all land.
async fn apply_to_broker(
    broker: &Broker,
    name: &str,
    validate_only: bool,
    change: Change<'_>,
) -> (i16, Option<StrBytes>) {
    use crate::dynamic_config::DynamicConfigError;
    let scope = match broker.config_scope(name) {
        Ok(scope) => scope,
        Err(e) => return invalid_request(&e.to_string()),
    };
    let changed = || {
        let mut values = broker.dynamic.layers().get(scope).clone();
        let effective = broker.effective_config();
        let current = |k: &str| effective.value_of(k).map(|(v, _)| v);
        change(&mut values, &current).map_err(DynamicConfigError::Refused)?;
        broker.set_dynamic_configs(scope, values, validate_only)
    };
    let result = if validate_only {
        changed()
    } else {
        broker
            .change_shared(&broker.shared_layer(scope), changed)
            .await
    };
    match result {
        Ok(()) => (ErrorCode::NONE.code(), None),
        Err(DynamicConfigError::Refused(msg)) => invalid_request(&msg),
        Err(e @ DynamicConfigError::Store(_)) => {
            tracing::error!(error = %e, "cannot store dynamic broker configs");
            (
                ResponseError::UnknownServerError.code(),
                Some(str_bytes(&e.to_string())),
            )
        }
    }
}

/// IncrementalAlterConfigs' operations, applied in order.
fn incremental(
    ops: &[incremental_alter_configs_request::AlterableConfig],
    configs: &mut Config,
    current: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    for c in ops {
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
                let existing = configs.get(&name).cloned().or_else(|| current(&name));
                let mut items = list_items(existing.as_deref().unwrap_or(""));
                for item in list_items(&v) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                configs.insert(name, items.join(","));
            }
            (OP_SUBTRACT, Some(v)) => {
                let remove = list_items(&v);
                let existing = configs.get(&name).cloned().or_else(|| current(&name));
                let kept: Vec<String> = list_items(existing.as_deref().unwrap_or(""))
                    .into_iter()
                    .filter(|i| !remove.contains(i))
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
}

fn list_items(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn handle(
    broker: &Broker,
    req: AlterConfigsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<AlterConfigsResponse> {
    let mut responses = Vec::new();
    for r in req.resources {
        responses.push({
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
                None => {
                    apply(
                        broker,
                        r.resource_type,
                        &r.resource_name,
                        req.validate_only,
                        Box::new(|configs, _| {
                            configs.clear();
                            for c in &r.configs {
                                let v = c
                                    .value
                                    .as_ref()
                                    .ok_or_else(|| format!("Null value for {}", &*c.name))?;
                                configs.insert(c.name.to_string(), v.to_string());
                            }
                            Ok(())
                        }),
                    )
                    .await
                }
            };
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        });
    }
    Some(AlterConfigsResponse::default().with_responses(responses))
}

pub async fn handle_incremental(
    broker: &Broker,
    req: IncrementalAlterConfigsRequest,
    _version: i16,
    ctx: &RequestContext,
) -> Option<IncrementalAlterConfigsResponse> {
    let mut responses = Vec::new();
    for r in req.resources {
        responses.push({
            let op = if r.resource_type == RESOURCE_BROKER_LOGGER {
                Operation::ClusterAction
            } else {
                Operation::AlterConfigs
            };
            let refused = config_refusal(broker, ctx, op, r.resource_type, &r.resource_name);
            let (code, msg) = match refused {
                Some((code, msg)) => (code, Some(msg)),
                None => {
                    apply(
                        broker,
                        r.resource_type,
                        &r.resource_name,
                        req.validate_only,
                        Box::new(|configs, current| incremental(&r.configs, configs, current)),
                    )
                    .await
                }
            };
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(msg)
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
        });
    }
    Some(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
