//! The broker keys of cluster mode: where the two engines are (`storage`, `metadata`, also `--storage` and
//! `--metadata`), how produce rounds are cut (`diskless.commit.*`, named after KIP-1150's diskless topics),
//! the read cache, the lease (`broker.session.timeout.ms`, Kafka's KRaft name), the rack, and `s3.*`:
//! object_store's S3 settings (`s3.endpoint`, `s3.region`, `s3.access_key_id`, `s3.allow_http`, ...) over the
//! `AWS_*` environment.

use std::time::Duration;

use runnel_storage::config::{ConfigDef, ConfigType};

use super::commit_pipeline::RoundLimits;
use super::node::ClusterSettings;
use crate::config::{broker_def as def, BrokerConfig};

pub const CLUSTER_CONFIGS: &[ConfigDef] = &[
    def("storage", "", ConfigType::String, None),
    def("metadata", "", ConfigType::String, None),
    def("broker.rack", "", ConfigType::String, None),
    def(
        "diskless.commit.interval.ms",
        "25",
        ConfigType::Long,
        Some(1),
    ),
    def(
        "diskless.commit.max.bytes",
        "8388608",
        ConfigType::Int,
        Some(1024),
    ),
    def(
        "diskless.read.cache.bytes",
        "268435456",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "diskless.compaction.delay.ms",
        "60000",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "diskless.segment.bytes",
        "67108864",
        ConfigType::Long,
        Some(1024),
    ),
    def(
        "diskless.object.delete.grace.ms",
        "60000",
        ConfigType::Long,
        Some(0),
    ),
    def(
        "broker.session.timeout.ms",
        "9000",
        ConfigType::Int,
        Some(300),
    ),
];

/// Any `s3.*` key: its value is object_store's to judge when the store is opened.
const S3_KEY: ConfigDef = def("s3.*", "", ConfigType::String, None);
const S3_SECRET: ConfigDef = ConfigDef {
    sensitive: true,
    ..S3_KEY
};

pub fn find(key: &str) -> Option<&'static ConfigDef> {
    if let Some(rest) = key.strip_prefix("s3.") {
        if rest.is_empty() {
            return None;
        }
        return Some(if rest.contains("secret") || rest.contains("token") {
            &S3_SECRET
        } else {
            &S3_KEY
        });
    }
    CLUSTER_CONFIGS.iter().find(|d| d.name == key)
}

impl BrokerConfig {
    /// Cluster mode's settings when `storage` and `metadata` are both set; None runs a single node. One
    /// without the other is refused at start (see `main`).
    pub fn cluster_settings(&self) -> Option<ClusterSettings> {
        let storage = self.get("storage").filter(|s| !s.is_empty())?;
        let metadata = self.get("metadata").filter(|s| !s.is_empty())?;
        let number = |key: &str, fallback: u64| {
            self.value_of(key)
                .and_then(|(v, _)| v.parse::<u64>().ok())
                .unwrap_or(fallback)
        };
        Some(ClusterSettings {
            node_id: self.node_id(),
            storage_url: storage.to_string(),
            metadata_url: metadata.to_string(),
            s3: self
                .settings()
                .filter_map(|(k, v)| {
                    let key = k.strip_prefix("s3.")?;
                    // object_store names its S3 keys aws_*; both spellings are accepted.
                    let key = if key.starts_with("aws_") {
                        key.to_string()
                    } else {
                        format!("aws_{key}")
                    };
                    Some((key, v.to_string()))
                })
                .collect(),
            rack: self
                .get("broker.rack")
                .filter(|r| !r.is_empty())
                .map(str::to_string),
            session_timeout: Duration::from_millis(number("broker.session.timeout.ms", 9000)),
            rounds: RoundLimits {
                interval: Duration::from_millis(number("diskless.commit.interval.ms", 25)),
                max_bytes: usize::try_from(number("diskless.commit.max.bytes", 8 << 20))
                    .unwrap_or(8 << 20),
            },
            cache_bytes: usize::try_from(number("diskless.read.cache.bytes", 256 << 20))
                .unwrap_or(256 << 20),
            delete_grace: Duration::from_millis(number("diskless.object.delete.grace.ms", 60_000)),
            compaction_delay: Duration::from_millis(number("diskless.compaction.delay.ms", 60_000)),
            segment_bytes: number("diskless.segment.bytes", 64 << 20),
        })
    }
}
