//! Topic-level log configuration: Kafka's names, defaults, broker-level synonyms and validation.
//!
//! A topic's effective config is its overrides (kept in the catalog) over the broker's `log.*` settings over
//! Kafka's defaults. The table below is the single place that knows every key, so validation, defaults and
//! DescribeConfigs can never disagree.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::{Result, StorageError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Long,
    Int,
    Boolean,
    Double,
    String,
    /// One of a fixed set of (lower-case) words.
    Choice(&'static [&'static str]),
    /// A comma-separated list of words from a fixed set.
    List(&'static [&'static str]),
}

/// One topic config key as Kafka defines it.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    /// The broker-level key that sets the default for every topic, as in Kafka.
    pub broker_synonym: Option<&'static str>,
    pub default: &'static str,
    pub kind: ConfigType,
    /// Smallest accepted value for numeric keys.
    pub min: Option<i64>,
    pub sensitive: bool,
}

const fn def(
    name: &'static str,
    broker_synonym: Option<&'static str>,
    default: &'static str,
    kind: ConfigType,
    min: Option<i64>,
) -> ConfigDef {
    ConfigDef {
        name,
        broker_synonym,
        default,
        kind,
        min,
        sensitive: false,
    }
}

const CLEANUP: &[&str] = &["delete", "compact"];
const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TIMESTAMP_TYPE: &[&str] = &["CreateTime", "LogAppendTime"];

/// Every topic config Runnel accepts, with Kafka's defaults.
pub const TOPIC_CONFIGS: &[ConfigDef] = &[
    def(
        "cleanup.policy",
        Some("log.cleanup.policy"),
        "delete",
        ConfigType::List(CLEANUP),
        None,
    ),
    def(
        "compression.type",
        Some("compression.type"),
        "producer",
        ConfigType::Choice(COMPRESSION),
        None,
    ),
    def(
        "delete.retention.ms",
        Some("log.cleaner.delete.retention.ms"),
        "86400000",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "file.delete.delay.ms",
        Some("log.segment.delete.delay.ms"),
        "60000",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "flush.messages",
        Some("log.flush.interval.messages"),
        "9223372036854775807",
        ConfigType::Long,
        Some(1),
    ),
    def(
        "flush.ms",
        Some("log.flush.interval.ms"),
        "9223372036854775807",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "index.interval.bytes",
        Some("log.index.interval.bytes"),
        "4096",
        ConfigType::Int,
        Some(0),
    ),
    def(
        "max.compaction.lag.ms",
        Some("log.cleaner.max.compaction.lag.ms"),
        "9223372036854775807",
        ConfigType::Long,
        Some(1),
    ),
    def(
        "max.message.bytes",
        Some("message.max.bytes"),
        "1048588",
        ConfigType::Int,
        Some(0),
    ),
    def(
        "message.timestamp.after.max.ms",
        Some("log.message.timestamp.after.max.ms"),
        "3600000",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "message.timestamp.before.max.ms",
        Some("log.message.timestamp.before.max.ms"),
        "9223372036854775807",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "message.timestamp.type",
        Some("log.message.timestamp.type"),
        "CreateTime",
        ConfigType::Choice(TIMESTAMP_TYPE),
        None,
    ),
    def(
        "min.cleanable.dirty.ratio",
        Some("log.cleaner.min.cleanable.ratio"),
        "0.5",
        ConfigType::Double,
        None,
    ),
    def(
        "min.compaction.lag.ms",
        Some("log.cleaner.min.compaction.lag.ms"),
        "0",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "min.insync.replicas",
        Some("min.insync.replicas"),
        "1",
        ConfigType::Int,
        Some(1),
    ),
    def(
        "preallocate",
        Some("log.preallocate"),
        "false",
        ConfigType::Boolean,
        None,
    ),
    def(
        "retention.bytes",
        Some("log.retention.bytes"),
        "-1",
        ConfigType::Long,
        None,
    ),
    def(
        "retention.ms",
        Some("log.retention.ms"),
        "604800000",
        ConfigType::Long,
        Some(-1),
    ),
    def(
        "segment.bytes",
        Some("log.segment.bytes"),
        "1073741824",
        ConfigType::Int,
        Some(14),
    ),
    def(
        "segment.index.bytes",
        Some("log.index.size.max.bytes"),
        "10485760",
        ConfigType::Int,
        Some(4),
    ),
    def(
        "segment.jitter.ms",
        Some("log.roll.jitter.ms"),
        "0",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "segment.ms",
        Some("log.roll.ms"),
        "604800000",
        ConfigType::Long,
        Some(1),
    ),
    def(
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
        "false",
        ConfigType::Boolean,
        None,
    ),
];

pub fn topic_config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// The topic config that a broker-level key sets the default of, if any.
pub fn topic_config_for_broker_key(broker_key: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS
        .iter()
        .find(|d| d.broker_synonym == Some(broker_key))
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> StorageError {
    StorageError::InvalidConfig {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Checks `value` against the definition of `key`, as Kafka's ConfigDef does.
pub fn validate_topic_config(key: &str, value: &str) -> Result<()> {
    let def = topic_config_def(key).ok_or_else(|| invalid(key, value, "unknown topic config"))?;
    validate_value(def, value)
}

pub fn validate_value(def: &ConfigDef, value: &str) -> Result<()> {
    let v = value.trim();
    let numeric = |n: i64| match def.min {
        Some(min) if n < min => Err(invalid(
            def.name,
            value,
            format!("value must be at least {min}"),
        )),
        _ => Ok(()),
    };
    match def.kind {
        ConfigType::Long => numeric(
            v.parse::<i64>()
                .map_err(|_| invalid(def.name, value, "not a long"))?,
        ),
        ConfigType::Int => numeric(i64::from(
            v.parse::<i32>()
                .map_err(|_| invalid(def.name, value, "not an int"))?,
        )),
        ConfigType::Double => v
            .parse::<f64>()
            .map(|_| ())
            .map_err(|_| invalid(def.name, value, "not a double")),
        ConfigType::Boolean => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err(invalid(def.name, value, "not a boolean")),
        },
        ConfigType::String => Ok(()),
        ConfigType::Choice(words) => {
            if words.iter().any(|w| w.eq_ignore_ascii_case(v)) {
                Ok(())
            } else {
                Err(invalid(
                    def.name,
                    value,
                    format!("must be one of {}", words.join(", ")),
                ))
            }
        }
        ConfigType::List(words) => {
            for item in v.split(',').map(str::trim) {
                if !words.iter().any(|w| w.eq_ignore_ascii_case(item)) {
                    return Err(invalid(
                        def.name,
                        value,
                        format!("each item must be one of {}", words.join(", ")),
                    ));
                }
            }
            Ok(())
        }
    }
}

/// The typed settings the log itself acts on, resolved from overrides, broker defaults and Kafka defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: usize,
    pub index_interval_bytes: u64,
    pub segment_index_bytes: usize,
    pub compact: bool,
    pub delete: bool,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub log_append_time: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::resolve(&BTreeMap::new(), &BTreeMap::new())
    }
}

impl LogConfig {
    /// Resolves every key: topic override, else broker default (by topic name), else Kafka's default.
    /// Values are expected to have been validated; an unparsable one falls back to the default.
    pub fn resolve(
        overrides: &BTreeMap<String, String>,
        broker: &BTreeMap<String, String>,
    ) -> Self {
        let get = |name: &str| -> String {
            overrides
                .get(name)
                .or_else(|| broker.get(name))
                .cloned()
                .or_else(|| topic_config_def(name).map(|d| d.default.to_string()))
                .unwrap_or_default()
        };
        let long = |name: &str| -> i64 {
            get(name).trim().parse().unwrap_or_else(|_| {
                topic_config_def(name)
                    .and_then(|d| d.default.parse().ok())
                    .unwrap_or(0)
            })
        };
        let policy = get("cleanup.policy").to_ascii_lowercase();
        LogConfig {
            segment_bytes: long("segment.bytes").max(14) as u64,
            segment_ms: long("segment.ms").max(1),
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            flush_messages: long("flush.messages").max(1),
            flush_ms: long("flush.ms").max(0),
            max_message_bytes: long("max.message.bytes").max(0) as usize,
            index_interval_bytes: long("index.interval.bytes").max(0) as u64,
            segment_index_bytes: long("segment.index.bytes").max(64) as usize,
            compact: policy.contains("compact"),
            delete: policy.contains("delete"),
            delete_retention_ms: long("delete.retention.ms"),
            min_compaction_lag_ms: long("min.compaction.lag.ms"),
            log_append_time: get("message.timestamp.type").eq_ignore_ascii_case("LogAppendTime"),
        }
    }

    pub fn flush_interval(&self) -> Option<Duration> {
        (self.flush_ms < i64::MAX).then(|| Duration::from_millis(self.flush_ms as u64))
    }
    /// True when every append must be on disk before it is acknowledged.
    pub fn fsync_each_append(&self) -> bool {
        self.flush_messages <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_broker_defaults_over_kafka_defaults() {
        let mut broker = BTreeMap::new();
        broker.insert("retention.ms".to_string(), "1000".to_string());
        broker.insert("segment.bytes".to_string(), "5000".to_string());
        let mut topic = BTreeMap::new();
        topic.insert("retention.ms".to_string(), "2000".to_string());
        let c = LogConfig::resolve(&topic, &broker);
        assert_eq!(c.retention_ms, 2000);
        assert_eq!(c.segment_bytes, 5000);
        assert_eq!(c.max_message_bytes, 1048588);
        assert!(c.delete && !c.compact);
    }

    #[test]
    fn validation_matches_kafka_types() {
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("retention.ms", "abc").is_err());
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert!(validate_topic_config("segment.bytes", "3").is_err());
        assert!(validate_topic_config("no.such.key", "1").is_err());
    }
}
