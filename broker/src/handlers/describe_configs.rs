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
use crate::config::Source;
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
    TOPIC_CONFIGS
        .iter()
        .filter(|d| wanted(keys, d.name))
        .map(|d| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(d.name) {
                synonyms.push(synonym(d.name, v, SOURCE_DYNAMIC_TOPIC));
            }
            if let Some(b) = d.broker_synonym {
                if let Some(v) = broker.config.get(b) {
                    synonyms.push(synonym(b, v, SOURCE_STATIC_BROKER));
                }
                synonyms.push(synonym(b, d.default, SOURCE_DEFAULT));
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

fn broker_entries(broker: &Broker, keys: Option<&[String]>) -> Vec<DescribeConfigsResourceResult> {
    broker
        .config
        .describe()
        .into_iter()
        .filter(|k| wanted(keys, &k.name))
        .map(|k| {
            let source = match k.source {
                Source::Static => SOURCE_STATIC_BROKER,
                Source::Default => SOURCE_DEFAULT,
            };
            // As Kafka: a sensitive key is listed, its value (and its synonyms' values) never is.
            let value = (!k.sensitive).then(|| str_bytes(&k.value));
            let syn = DescribeConfigsSynonym::default()
                .with_name(str_bytes(&k.name))
                .with_value(value.clone())
                .with_source(source);
            DescribeConfigsResourceResult::default()
                .with_name(str_bytes(&k.name))
                .with_value(value)
                .with_read_only(true)
                .with_config_source(source)
                .with_is_sensitive(k.sensitive)
                .with_synonyms(vec![syn])
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
                RESOURCE_BROKER
                    if r.resource_name.is_empty()
                        || *r.resource_name == *broker.node_id.to_string() =>
                {
                    broker_entries(broker, keys.as_deref())
                }
                RESOURCE_BROKER => {
                    return base
                        .with_error_code(ResponseError::InvalidRequest.code())
                        .with_error_message(Some(str_bytes("Unexpected broker id")))
                }
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
