//! Dynamic broker configs (KIP-226): values set with AlterConfigs / IncrementalAlterConfigs on the BROKER
//! resource, for every broker (the cluster default, resource name "") or for this broker (its node id).
//! They win over the static config (flags, file, environment) in Kafka's order: per broker, cluster default,
//! static, default. Durable in `broker-configs.json`; subsystems holding live state (listeners' TLS,
//! connection limits, open logs) re-read the effective config when [`DynamicConfigs::subscribe`] fires.

pub mod apply;
pub mod keys;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use apply::DynamicConfigError;
pub use keys::Scope;

use crate::cluster::documents::SharedDocument;
use crate::config::BrokerConfig;
use crate::metadata_file::{self, MetadataFileError};

pub const DYNAMIC_CONFIG_FILE: &str = "broker-configs.json";

/// The two dynamic layers, lowest precedence first when overlaid.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Layers {
    #[serde(default)]
    pub cluster_default: BTreeMap<String, String>,
    #[serde(default)]
    pub broker: BTreeMap<String, String>,
}

impl Layers {
    pub fn get(&self, scope: Scope) -> &BTreeMap<String, String> {
        match scope {
            Scope::ClusterDefault => &self.cluster_default,
            Scope::Broker => &self.broker,
        }
    }

    fn get_mut(&mut self, scope: Scope) -> &mut BTreeMap<String, String> {
        match scope {
            Scope::ClusterDefault => &mut self.cluster_default,
            Scope::Broker => &mut self.broker,
        }
    }

    /// The static config with both layers applied over it.
    pub fn overlay(&self, base: &BrokerConfig) -> BrokerConfig {
        base.overlaid(self.cluster_default.iter().chain(&self.broker))
    }
}

pub struct DynamicConfigs {
    path: PathBuf,
    layers: RwLock<Layers>,
    changed: watch::Sender<u64>,
}

impl DynamicConfigs {
    /// Reads the stored layers; an entry this version no longer accepts (a key made static, a value out
    /// of range) is dropped with a warning rather than refusing to start.
    pub fn open(dir: &Path) -> Result<Self, MetadataFileError> {
        let path = dir.join(DYNAMIC_CONFIG_FILE);
        let mut layers: Layers = metadata_file::load(&path)?;
        for scope in [Scope::ClusterDefault, Scope::Broker] {
            keep_accepted(layers.get_mut(scope), scope);
        }
        Ok(DynamicConfigs {
            path,
            layers: RwLock::new(layers),
            changed: watch::Sender::new(0),
        })
    }

    pub fn layers(&self) -> Layers {
        self.layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces one layer (already checked by the caller), durably, then tells the subscribers.
    pub fn replace(
        &self,
        scope: Scope,
        values: BTreeMap<String, String>,
    ) -> Result<(), MetadataFileError> {
        let mut layers = self.layers.write().unwrap_or_else(|p| p.into_inner());
        let mut next = layers.clone();
        *next.get_mut(scope) = values;
        metadata_file::save(&self.path, &next, false)?;
        *layers = next;
        drop(layers);
        self.changed.send_modify(|generation| *generation += 1);
        Ok(())
    }

    /// Fires after every change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn overlay(&self, base: &BrokerConfig) -> BrokerConfig {
        self.layers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .overlay(base)
    }
}

fn keep_accepted(values: &mut BTreeMap<String, String>, scope: Scope) {
    values.retain(|k, v| match keys::check(k, v, scope) {
        Ok(()) => true,
        Err(reason) => {
            tracing::warn!(key = %k, %reason, "ignoring a stored dynamic broker config");
            false
        }
    });
}

/// One dynamic layer as a cluster shares it: the cluster default is one document for every broker, a
/// broker's own layer one document per node id (so it outlives the broker's disk).
pub struct SharedLayer<'a> {
    pub configs: &'a DynamicConfigs,
    pub scope: Scope,
    pub node_id: i32,
}

impl SharedDocument for SharedLayer<'_> {
    fn document(&self) -> String {
        match self.scope {
            Scope::ClusterDefault => "broker-configs/default".into(),
            Scope::Broker => format!("broker-configs/{}", self.node_id),
        }
    }

    fn export(&self) -> Result<String, MetadataFileError> {
        let layers = self.configs.layers();
        serde_json::to_string(layers.get(self.scope))
            .map_err(|e| metadata_file::document_write_error(&self.document(), e))
    }

    fn install(&self, body: &str) -> Result<(), MetadataFileError> {
        let mut values: BTreeMap<String, String> = serde_json::from_str(body)
            .map_err(|e| metadata_file::document_read_error(&self.document(), e))?;
        keep_accepted(&mut values, self.scope);
        if self.configs.layers().get(self.scope) == &values {
            return Ok(());
        }
        self.configs.replace(self.scope, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_persist_and_win_over_the_static_config_per_broker_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut base = BrokerConfig::default();
        base.set("log.retention.ms", "1").expect("static");
        let store = DynamicConfigs::open(dir.path()).expect("open");
        let seen = store.subscribe();
        store
            .replace(
                Scope::ClusterDefault,
                BTreeMap::from([("log.retention.ms".into(), "2".into())]),
            )
            .expect("default");
        assert!(seen.has_changed().expect("sender alive"));
        assert_eq!(store.overlay(&base).get("log.retention.ms"), Some("2"));
        store
            .replace(
                Scope::Broker,
                BTreeMap::from([("log.retention.ms".into(), "3".into())]),
            )
            .expect("broker");
        let reopened = DynamicConfigs::open(dir.path()).expect("reopen");
        assert_eq!(reopened.overlay(&base).get("log.retention.ms"), Some("3"));
        assert_eq!(
            reopened.layers().cluster_default.get("log.retention.ms"),
            Some(&"2".to_string())
        );
    }
}
