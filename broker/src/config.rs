//! Broker configuration: Kafka's own key names, from a TOML file, `RUNNEL_*` environment variables and
//! `--set key=value` flags, in that order of precedence (flags win).
//!
//! Topic defaults (`log.retention.ms`, `log.segment.bytes`, ...) are broker keys whose topic-level synonyms
//! the storage crate knows; they are validated by the same table so a bad value fails at start, not later.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use runnel_storage::config::{topic_config_for_broker_key, validate_value, ConfigDef, ConfigType};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown config key '{0}' (Runnel uses Kafka's broker config names, e.g. num.partitions, log.retention.ms)")]
    UnknownKey(String),
    #[error("invalid value '{value}' for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    #[error("'{0}' is not of the form key=value")]
    NotKeyValue(String),
    #[error("{key} is not accepted: {reason}")]
    Refused { key: String, reason: &'static str },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
}

pub(crate) const fn broker_def(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    min: Option<i64>,
) -> ConfigDef {
    ConfigDef {
        name,
        broker_synonym: None,
        default,
        kind,
        min,
        sensitive: false,
    }
}

/// Broker keys that are not topic defaults.
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    broker_def(
        "auto.create.topics.enable",
        "true",
        ConfigType::Boolean,
        None,
    ),
    broker_def("broker.id", "0", ConfigType::Int, Some(0)),
    broker_def("node.id", "0", ConfigType::Int, Some(0)),
    broker_def("num.partitions", "1", ConfigType::Int, Some(1)),
    broker_def("default.replication.factor", "1", ConfigType::Int, Some(1)),
    broker_def("delete.topic.enable", "true", ConfigType::Boolean, None),
    broker_def(
        "socket.request.max.bytes",
        "104857600",
        ConfigType::Int,
        Some(1),
    ),
    broker_def(
        "log.retention.check.interval.ms",
        "300000",
        ConfigType::Long,
        Some(1),
    ),
    broker_def(
        "log.flush.scheduler.interval.ms",
        "1000",
        ConfigType::Long,
        Some(1),
    ),
    broker_def(
        "log.flush.offset.checkpoint.interval.ms",
        "60000",
        ConfigType::Long,
        Some(0),
    ),
    broker_def("log.cleaner.backoff.ms", "15000", ConfigType::Long, Some(1)),
    broker_def(
        "group.min.session.timeout.ms",
        "6000",
        ConfigType::Int,
        Some(1),
    ),
    broker_def(
        "group.max.session.timeout.ms",
        "1800000",
        ConfigType::Int,
        Some(1),
    ),
    broker_def(
        "group.initial.rebalance.delay.ms",
        "3000",
        ConfigType::Int,
        Some(0),
    ),
    broker_def("group.max.size", "2147483647", ConfigType::Int, Some(1)),
    broker_def(
        "offsets.retention.minutes",
        "10080",
        ConfigType::Int,
        Some(1),
    ),
    broker_def(
        "offsets.retention.check.interval.ms",
        "600000",
        ConfigType::Long,
        Some(1),
    ),
    broker_def(
        "offset.metadata.max.bytes",
        "4096",
        ConfigType::Int,
        Some(0),
    ),
    broker_def(
        "transaction.max.timeout.ms",
        "900000",
        ConfigType::Int,
        Some(1),
    ),
    broker_def(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
        ConfigType::Int,
        Some(1),
    ),
    broker_def("log.dirs", "./runnel-data", ConfigType::String, None),
    broker_def("max.connections", "10000", ConfigType::Int, Some(1)),
    broker_def("max.connections.per.ip", "1000", ConfigType::Int, Some(0)),
    broker_def(
        "max.connections.per.ip.overrides",
        "",
        ConfigType::String,
        None,
    ),
    broker_def(
        "connections.max.idle.ms",
        "600000",
        ConfigType::Long,
        Some(1),
    ),
    broker_def(
        "max.partitions.per.request",
        "10000",
        ConfigType::Int,
        Some(1),
    ),
    broker_def("max.broker.partitions", "100000", ConfigType::Int, Some(1)),
    broker_def("log.max.open.files", "1024", ConfigType::Int, Some(16)),
];

/// Kafka's coarser-unit aliases, converted to the millisecond key.
const UNIT_ALIASES: &[(&str, &str, i64)] = &[
    ("log.retention.hours", "log.retention.ms", 3_600_000),
    ("log.retention.minutes", "log.retention.ms", 60_000),
    ("log.roll.hours", "log.roll.ms", 3_600_000),
];

/// A broker-wide key's definition (not a topic default, not a per-listener override).
pub fn find_def(key: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS
        .iter()
        .find(|d| d.name == key)
        .or_else(|| crate::security::config::find(key))
        .or_else(|| crate::cluster::config::find(key))
}

/// The definition that validates a key: a broker key, a topic default, or a per-listener override.
fn def_for(key: &str) -> Option<&'static ConfigDef> {
    find_def(key)
        .or_else(|| topic_config_for_broker_key(key))
        .or_else(|| crate::security::config::listener_override(key).map(|(_, d)| d))
}

/// A key's default, for keys with a definition (broker keys, topic defaults, per-listener overrides).
pub fn default_value(key: &str) -> Option<&'static str> {
    def_for(key).map(|d| d.default)
}

/// Whether a key's value is never reported (key material, passwords).
pub fn is_sensitive(key: &str) -> bool {
    def_for(key).is_some_and(|d| d.sensitive)
}

/// Every key a user may set.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    use crate::security::config::{GSSAPI_CONFIGS, LISTENER_CONFIGS, SECURITY_CONFIGS};
    BROKER_CONFIGS
        .iter()
        .chain(SECURITY_CONFIGS)
        .chain(LISTENER_CONFIGS)
        .chain(GSSAPI_CONFIGS)
        .chain(crate::cluster::config::CLUSTER_CONFIGS)
        .map(|d| d.name)
        .chain(
            runnel_storage::config::TOPIC_CONFIGS
                .iter()
                .filter_map(|d| d.broker_synonym),
        )
}

/// Where a static setting came from (the dynamic layers are `crate::dynamic_config`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Static,
}

/// One broker key as DescribeConfigs reports it; a sensitive value is never sent.
pub struct DescribedKey {
    pub name: String,
    pub value: String,
    pub source: Source,
    pub sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub listen: String,
    pub advertised: Option<String>,
    pub data_dir: PathBuf,
    /// Jobs to host co-located (`serve --job NAME:k=v,...`).
    pub jobs: Vec<String>,
    /// Where to serve Prometheus metrics (`serve --metrics-listen`).
    pub metrics_listen: Option<String>,
    /// Kafka-named keys set explicitly, already validated and normalised.
    settings: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            listen: "127.0.0.1:9092".into(),
            advertised: None,
            data_dir: PathBuf::from("./runnel-data"),
            jobs: Vec::new(),
            metrics_listen: None,
            settings: BTreeMap::new(),
        }
    }
}

impl BrokerConfig {
    /// Sets one Kafka-named key after validating it; unit aliases become their millisecond key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let key = key.trim();
        let value = value.trim();
        if let Some((_, ms_key, factor)) = UNIT_ALIASES.iter().find(|(k, _, _)| *k == key) {
            let n: i64 = value.parse().map_err(|_| ConfigError::InvalidValue {
                key: key.into(),
                value: value.into(),
                reason: "not a number".into(),
            })?;
            return self.set(ms_key, &n.saturating_mul(*factor).to_string());
        }
        if let Some(reason) = crate::security::config::jaas_refusal(key) {
            return Err(ConfigError::Refused {
                key: key.into(),
                reason,
            });
        }
        let def = def_for(key).ok_or_else(|| ConfigError::UnknownKey(key.to_string()))?;
        validate_value(def, value).map_err(|e| ConfigError::InvalidValue {
            key: key.into(),
            value: value.into(),
            reason: e.to_string(),
        })?;
        if key == "log.dirs" {
            self.data_dir = PathBuf::from(value);
        }
        self.settings.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// Parses `key=value` and sets it.
    pub fn set_pair(&mut self, pair: &str) -> Result<(), ConfigError> {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| ConfigError::NotKeyValue(pair.to_string()))?;
        if k.trim().is_empty() {
            return Err(ConfigError::NotKeyValue(pair.to_string()));
        }
        self.set(k, v)
    }

    /// Reads a TOML file. Nested tables are flattened with dots, so `num.partitions = 3` and
    /// `[log] retention.ms = 1000` both work; `listen`, `advertised` and `data_dir` are Runnel's own keys.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_err = |reason: String| ConfigError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
        let value: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_err(e.to_string()))?;
        let mut flat = Vec::new();
        flatten("", &toml::Value::Table(value), &mut flat);
        for (k, v) in flat {
            match k.as_str() {
                "listen" => self.listen = v,
                "advertised" => self.advertised = Some(v),
                "data_dir" | "data-dir" | "data.dir" => self.data_dir = PathBuf::from(v),
                _ => self.set(&k, &v)?,
            }
        }
        Ok(())
    }

    /// Applies `RUNNEL_<KEY>` variables for every known key (dots become underscores, upper case).
    pub fn load_env(&mut self) -> Result<(), ConfigError> {
        for key in known_keys() {
            let var = format!("RUNNEL_{}", key.replace('.', "_").to_ascii_uppercase());
            if let Ok(v) = std::env::var(&var) {
                self.set(key, &v)?;
            }
        }
        Ok(())
    }

    /// A key as one listener sees it: `listener.name.<listener>.<key>`, else the broker-wide value, else
    /// the default.
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<String> {
        let scoped = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        self.settings
            .get(&scoped)
            .cloned()
            .or_else(|| self.value_of(key).map(|(v, _)| v))
    }

    /// The listeners to bind: `listeners` when set, else the `--listen` / `--advertised` shorthand.
    pub fn listener_specs(
        &self,
    ) -> Result<Vec<crate::security::listener_config::ListenerSpec>, ConfigError> {
        use crate::security::listener_config;
        let invalid = |key: &str, reason: String| ConfigError::InvalidValue {
            key: key.into(),
            value: self.get(key).unwrap_or_default().into(),
            reason,
        };
        match self.get("listeners").filter(|l| !l.trim().is_empty()) {
            Some(listeners) => listener_config::parse(
                listeners,
                self.get("advertised.listeners").unwrap_or_default(),
                &self
                    .value_of("listener.security.protocol.map")
                    .map(|(v, _)| v)
                    .unwrap_or_default(),
            )
            .map_err(|e| invalid("listeners", e.to_string())),
            None => {
                let advertised = match &self.advertised {
                    Some(a) => {
                        let (h, p) = a
                            .rsplit_once(':')
                            .and_then(|(h, p)| Some((h.to_string(), p.parse::<i32>().ok()?)))
                            .ok_or_else(|| ConfigError::InvalidValue {
                                key: "advertised".into(),
                                value: a.clone(),
                                reason: "expected HOST:PORT".into(),
                            })?;
                        Some((h, p))
                    }
                    None => None,
                };
                Ok(vec![listener_config::plaintext(&self.listen, advertised)])
            }
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// Every key set explicitly, with its value.
    pub fn settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// This config with `entries` set over it; they were checked when they were accepted (dynamic configs).
    pub fn overlaid<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a String, &'a String)>,
    ) -> Self {
        let mut out = self.clone();
        out.settings
            .extend(entries.into_iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// The value and source of a broker key, falling back to its default.
    pub fn value_of(&self, key: &str) -> Option<(String, Source)> {
        if let Some(v) = self.settings.get(key) {
            return Some((v.clone(), Source::Static));
        }
        def_for(key).map(|d| (d.default.to_string(), Source::Default))
    }

    fn parsed<T: std::str::FromStr>(&self, key: &str, fallback: T) -> T {
        self.value_of(key)
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or(fallback)
    }

    /// `jobs.principal`: whom hosted jobs act as. Unparsable values were refused by `set`.
    pub fn job_principal(&self) -> crate::security::Principal {
        self.get("jobs.principal")
            .and_then(crate::security::Principal::parse)
            .unwrap_or_else(crate::security::Principal::anonymous)
    }

    /// `quota.window.num` samples of `quota.window.size.seconds`, as Kafka measures quotas.
    pub fn quota_windows(&self) -> crate::quotas::rate::Windows {
        crate::quotas::rate::Windows {
            samples: self.parsed::<i64>("quota.window.num", 11).clamp(2, 1000) as usize,
            sample: std::time::Duration::from_secs(
                self.parsed::<i64>("quota.window.size.seconds", 1)
                    .clamp(1, 3600) as u64,
            ),
        }
    }

    pub fn node_id(&self) -> i32 {
        self.get("node.id")
            .or_else(|| self.get("broker.id"))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
    pub fn num_partitions(&self) -> i32 {
        self.parsed("num.partitions", 1)
    }
    pub fn auto_create_topics(&self) -> bool {
        self.parsed("auto.create.topics.enable", true)
    }
    pub fn delete_topic_enable(&self) -> bool {
        self.parsed("delete.topic.enable", true)
    }
    pub fn max_request_bytes(&self) -> usize {
        self.parsed::<i64>("socket.request.max.bytes", 104_857_600)
            .max(1) as usize
    }
    pub fn retention_check_interval_ms(&self) -> u64 {
        self.parsed::<i64>("log.retention.check.interval.ms", 300_000)
            .max(1) as u64
    }
    pub fn flush_scheduler_interval_ms(&self) -> u64 {
        self.parsed::<i64>("log.flush.scheduler.interval.ms", 1000)
            .max(1) as u64
    }
    pub fn checkpoint_interval_ms(&self) -> u64 {
        self.parsed::<i64>("log.flush.offset.checkpoint.interval.ms", 60_000)
            .max(1) as u64
    }
    pub fn cleaner_backoff_ms(&self) -> u64 {
        self.parsed::<i64>("log.cleaner.backoff.ms", 15_000).max(1) as u64
    }
    pub fn group_settings(&self) -> crate::groups::GroupSettings {
        let ms = |key: &str, default: i64| {
            std::time::Duration::from_millis(self.parsed::<i64>(key, default).max(0) as u64)
        };
        crate::groups::GroupSettings {
            min_session: ms("group.min.session.timeout.ms", 6000),
            max_session: ms("group.max.session.timeout.ms", 1_800_000),
            initial_delay: ms("group.initial.rebalance.delay.ms", 3000),
            max_size: self
                .parsed::<i64>("group.max.size", i64::from(i32::MAX))
                .max(1) as usize,
            offsets_retention_ms: self
                .parsed::<i64>("offsets.retention.minutes", 10080)
                .saturating_mul(60_000),
            metadata_max_bytes: self.parsed::<i64>("offset.metadata.max.bytes", 4096).max(0)
                as usize,
        }
    }
    pub fn txn_settings(&self) -> crate::transactions::TxnSettings {
        crate::transactions::TxnSettings {
            max_timeout_ms: self.parsed::<i32>("transaction.max.timeout.ms", 900_000),
        }
    }
    pub fn txn_cleanup_interval_ms(&self) -> u64 {
        self.parsed::<i64>(
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            10_000,
        )
        .max(1) as u64
    }
    pub fn offsets_retention_check_interval_ms(&self) -> u64 {
        self.parsed::<i64>("offsets.retention.check.interval.ms", 600_000)
            .max(1) as u64
    }
    pub fn max_connections(&self) -> usize {
        self.parsed::<i64>("max.connections", 10_000).max(1) as usize
    }

    /// Connections one address may hold: `max.connections.per.ip`, or its entry in
    /// `max.connections.per.ip.overrides` (`host:count,host:count`, as in Kafka).
    pub fn connection_limits(&self) -> Result<crate::connection_limits::Limits, ConfigError> {
        let overrides = self.get("max.connections.per.ip.overrides").unwrap_or("");
        crate::connection_limits::Limits::parse(
            self.max_connections(),
            self.parsed::<i64>("max.connections.per.ip", 1000).max(0) as usize,
            overrides,
        )
        .map_err(|reason| ConfigError::InvalidValue {
            key: "max.connections.per.ip.overrides".into(),
            value: overrides.into(),
            reason,
        })
    }

    pub fn connections_max_idle_ms(&self) -> u64 {
        self.parsed::<i64>("connections.max.idle.ms", 600_000)
            .max(1) as u64
    }

    pub fn max_partitions_per_request(&self) -> i64 {
        self.parsed::<i64>("max.partitions.per.request", 10_000)
            .max(1)
    }

    pub fn max_broker_partitions(&self) -> i64 {
        self.parsed::<i64>("max.broker.partitions", 100_000).max(1)
    }

    pub fn max_open_files(&self) -> usize {
        self.parsed::<i64>("log.max.open.files", 1024).max(16) as usize
    }

    /// Broker-level topic defaults keyed by their topic config name, for [`runnel_storage::LogConfig`].
    pub fn topic_defaults(&self) -> BTreeMap<String, String> {
        self.settings
            .iter()
            .filter_map(|(k, v)| {
                topic_config_for_broker_key(k).map(|d| (d.name.to_string(), v.clone()))
            })
            .collect()
    }

    /// Every broker key with its value, source and sensitivity, for DescribeConfigs on the broker resource:
    /// the known keys, then the per-listener overrides that are set.
    pub fn describe(&self) -> Vec<DescribedKey> {
        let known = known_keys().filter_map(|k| {
            let (value, source) = self.value_of(k)?;
            Some(DescribedKey {
                name: k.to_string(),
                value,
                source,
                sensitive: is_sensitive(k),
            })
        });
        let scoped = self
            .settings
            .iter()
            .filter_map(|(k, v)| {
                let (_, def) = crate::security::config::listener_override(k)?;
                Some(DescribedKey {
                    name: k.clone(),
                    value: v.clone(),
                    source: Source::Static,
                    sensitive: def.sensitive,
                })
            })
            .collect::<Vec<_>>();
        known.chain(scoped).collect()
    }
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut Vec<(String, String)>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        toml::Value::String(s) => out.push((prefix.to_string(), s.clone())),
        toml::Value::Array(items) => {
            let joined: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix.to_string(), joined.join(",")));
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_keys_validate_and_resolve_to_topic_defaults() {
        let mut c = BrokerConfig::default();
        c.set_pair("log.retention.hours=2").expect("alias");
        c.set_pair("num.partitions=3").expect("partitions");
        assert_eq!(
            c.topic_defaults().get("retention.ms").map(String::as_str),
            Some("7200000")
        );
        assert_eq!(c.num_partitions(), 3);
        assert!(matches!(
            c.set_pair("no.such=1"),
            Err(ConfigError::UnknownKey(_))
        ));
        assert!(matches!(
            c.set_pair("num.partitions=zero"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(matches!(
            c.set_pair("novalue"),
            Err(ConfigError::NotKeyValue(_))
        ));
    }

    #[test]
    fn toml_files_flatten_nested_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("runnel.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nnum.partitions = 4\n[log]\nretention.ms = 1000\n",
        )
        .expect("write");
        let mut c = BrokerConfig::default();
        c.load_file(&path).expect("load");
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.num_partitions(), 4);
        assert_eq!(c.get("log.retention.ms"), Some("1000"));
    }
}
