//! DescribeConfigs: every topic config with its effective value and where it came from (topic override,
//! broker setting, Kafka default), with synonyms when asked; broker resources list the broker's keys.
//! Each resource needs DESCRIBE_CONFIGS on it (on the cluster for broker-wide ones), as in Kafka's
//! `ConfigHelper.handleDescribeConfigsRequest`.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use runnel_storage::config::{ConfigType, TOPIC_CONFIGS};

use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::dynamic_config::{Layers, Scope};
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;
pub const RESOURCE_BROKER_LOGGER: i8 = 8;
pub const RESOURCE_CLIENT_METRICS: i8 = 16;
pub const RESOURCE_GROUP: i8 = 32;

/// The error for a config resource the principal may not do `op` on (DESCRIBE_CONFIGS or ALTER_CONFIGS),
/// with Kafka's message; None when allowed, or when the type is one Kafka refuses for another reason.
pub fn config_refusal(
    broker: &Broker,
    ctx: &RequestContext,
    op: Operation,
    resource_type: i8,
    name: &str,
) -> Option<(i16, StrBytes)> {
    let (allowed, error, message) = match resource_type {
        RESOURCE_BROKER | RESOURCE_BROKER_LOGGER | RESOURCE_CLIENT_METRICS => (
            ctx.allowed_on_cluster(broker, op),
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        ),
        RESOURCE_TOPIC => (
            ctx.allowed(broker, op, ResourceType::Topic, name),
            ResponseError::TopicAuthorizationFailed,
            "Topic authorization failed.",
        ),
        RESOURCE_GROUP => (
            ctx.allowed(broker, op, ResourceType::Group, name),
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.",
        ),
        _ => return None,
    };
    (!allowed).then(|| (error.code(), str_bytes(message)))
}

const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

fn type_code(kind: ConfigType) -> i8 {
    match kind {
        ConfigType::Boolean => 1,
        ConfigType::String | ConfigType::Choice(_) => 2,
        ConfigType::Int => 3,
        ConfigType::Long => 5,
        ConfigType::Double => 6,
        ConfigType::List(_) => 7,
    }
}

fn synonym(name: &str, value: &str, source: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str_bytes(name))
        .with_value(Some(str_bytes(value)))
        .with_source(source)
}

fn wanted(keys: Option<&[String]>, name: &str) -> bool {
    keys.is_none_or(|k| k.iter().any(|x| x == name))
}

/// Every topic config entry for a topic with these overrides.
pub fn topic_entries(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
    keys: Option<&[String]>,
) -> Vec<DescribeConfigsResourceResult> {
    let layers = broker.dynamic.layers();
    TOPIC_CONFIGS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(d.name) {
                synonyms.push(synonym(d.name, v, SOURCE_DYNAMIC_TOPIC));
            }
            if let Some(b) = d.broker_synonym {
                synonyms.extend(broker_synonyms(broker, &layers, b, d.default));
            }
            let (value, source) = match synonyms.first() {
                Some(s) => (s.value.clone(), s.source),
                None => (Some(str_bytes(d.default)), SOURCE_DEFAULT),
            };
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(d.name))
                .with_value(value)
                .with_read_only(false)
                .with_config_source(source)
                .with_is_sensitive(d.sensitive)
                .with_synonyms(synonyms)
                .with_config_type(type_code(d.kind))
        })
        .collect()
}

/// A broker key's values from highest precedence down: this broker's dynamic value, the cluster-wide
/// dynamic default, the static config, the built-in default (Kafka lists synonyms in that order).
fn broker_synonyms(
    broker: &Broker,
    layers: &Layers,
    key: &str,
    default: &str,
) -> Vec<DescribeConfigsSynonym> {
    let mut out = Vec::new();
    if let Some(v) = layers.broker.get(key) {
        out.push(synonym(key, v, SOURCE_DYNAMIC_BROKER));
    }
    if let Some(v) = layers.cluster_default.get(key) {
        out.push(synonym(key, v, SOURCE_DYNAMIC_DEFAULT_BROKER));
    }
    if let Some(v) = broker.config.get(key) {
        out.push(synonym(key, v, SOURCE_STATIC_BROKER));
    }
    out.push(synonym(key, default, SOURCE_DEFAULT));
    out
}

fn broker_entry(
    name: &str,
    synonyms: Vec<DescribeConfigsSynonym>,
    sensitive: bool,
) -> DescribeConfigsResourceResult {
    // As Kafka: a sensitive key is listed, its value (and its synonyms' values) never is.
    let synonyms: Vec<_> = synonyms
        .into_iter()
        .map(|s| if sensitive { s.with_value(None) } else { s })
        .collect();
    let (value, source) = synonyms
        .first()
        .map(|s| (s.value.clone(), s.source))
        .unwrap_or((None, SOURCE_DEFAULT));
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(name))
        .with_value(value)
        .with_read_only(!crate::dynamic_config::keys::is_dynamic(name))
        .with_config_source(source)
        .with_is_sensitive(sensitive)
        .with_synonyms(synonyms)
}

/// This broker's keys: every known one, plus the per-listener overrides set statically or dynamically.
fn broker_entries(broker: &Broker, keys: Option<&[String]>) -> Vec<DescribeConfigsResourceResult> {
    let layers = broker.dynamic.layers();
    let mut names: Vec<String> = broker
        .config
        .describe()
        .into_iter()
        .map(|k| k.name)
        .collect();
    for k in layers.broker.keys().chain(layers.cluster_default.keys()) {
        if !names.contains(k) {
            names.push(k.clone());
        }
    }
    names
        .iter()
        .filter(|k| wanted(keys, k))
        .map(|k| {
            let default = crate::config::default_value(k).unwrap_or_default();
            let mut synonyms = broker_synonyms(broker, &layers, k, default);
            if crate::config::default_value(k).is_none() {
                synonyms.pop();
            }
            broker_entry(k, synonyms, crate::config::is_sensitive(k))
        })
        .collect()
}

/// The cluster-wide dynamic defaults (resource name ""): only what was set, as Kafka lists them.
fn cluster_default_entries(
    broker: &Broker,
    keys: Option<&[String]>,
) -> Vec<DescribeConfigsResourceResult> {
    broker
        .dynamic
        .layers()
        .cluster_default
        .iter()
        .filter(|(k, _)| wanted(keys, k))
        .map(|(k, v)| {
            broker_entry(
                k,
                vec![synonym(k, v, SOURCE_DYNAMIC_DEFAULT_BROKER)],
                crate::config::is_sensitive(k),
            )
        })
        .collect()
}

pub async fn handle(
    broker: &Broker,
    req: DescribeConfigsRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<DescribeConfigsResponse> {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let keys: Option<Vec<String>> = r
                .configuration_keys
                .as_ref()
                .map(|k| k.iter().map(|s| s.to_string()).collect());
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let refused = config_refusal(
                broker,
                ctx,
                Operation::DescribeConfigs,
                r.resource_type,
                &r.resource_name,
            );
            if let Some((code, message)) = refused {
                return base.with_error_code(code).with_error_message(Some(message));
            }
            let mut entries = match r.resource_type {
                RESOURCE_TOPIC => match broker.topic_meta(&r.resource_name) {
                    Some(meta) => topic_entries(broker, &meta.configs, keys.as_deref()),
                    None => {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str_bytes(&format!(
                                "Topic {} does not exist.",
                                &*r.resource_name
                            ))))
                    }
                },
                RESOURCE_BROKER => match broker.config_scope(&r.resource_name) {
                    Ok(Scope::Broker) => broker_entries(broker, keys.as_deref()),
                    Ok(Scope::ClusterDefault) => cluster_default_entries(broker, keys.as_deref()),
                    Err(e) => {
                        return base
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str_bytes(&e.to_string())))
                    }
                },
                _ => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes("Unsupported resource type")))
                }
            };
            for e in &mut entries {
                if !req.include_synonyms {
                    e.synonyms.clear();
                }
                if version < 3 {
                    e.config_type = 0;
                }
            }
            base.with_error_code(ErrorCode::NONE.code())
                .with_configs(entries)
        })
        .collect();
    Some(DescribeConfigsResponse::default().with_results(results))
}
