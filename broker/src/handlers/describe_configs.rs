//! DescribeConfigs: every topic config with its effective value and where it came from (topic override,
//! broker setting, Kafka default), with synonyms when asked; broker resources list the broker's keys.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use runnel_storage::config::{ConfigType, TOPIC_CONFIGS};

use super::{str_bytes, ErrorCode};
use crate::broker::Broker;
use crate::config::Source;
use crate::request::RequestContext;

pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

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
    _ctx: &RequestContext,
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
