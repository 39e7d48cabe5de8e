//! Changing a dynamic layer on the running broker: check every changed key (scope, value, and for TLS keys
//! that the listener's new certificate actually loads, as Kafka validates a new keystore before accepting
//! it), store the layer, then bring live state along: open logs take the new topic defaults here; listeners
//! and connection limits follow through [`super::DynamicConfigs::subscribe`].

use std::collections::BTreeMap;

use super::{keys, Scope};
use crate::broker::Broker;
use crate::metadata_file::MetadataFileError;
use crate::security::tls::{TlsAcceptor, TlsSettings};

#[derive(Debug, thiserror::Error)]
pub enum DynamicConfigError {
    /// Answered with INVALID_REQUEST, as Kafka answers a config it will not change.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] MetadataFileError),
}

impl Broker {
    /// The static config with the dynamic layers over it: what the broker runs with now.
    pub fn effective_config(&self) -> crate::config::BrokerConfig {
        self.dynamic.overlay(&self.config)
    }

    /// The scope a BROKER resource name addresses, with Kafka's message for another broker's id.
    pub fn config_scope(&self, resource_name: &str) -> Result<Scope, DynamicConfigError> {
        if resource_name.is_empty() {
            Ok(Scope::ClusterDefault)
        } else if resource_name == self.node_id.to_string() {
            Ok(Scope::Broker)
        } else {
            Err(DynamicConfigError::Refused(format!(
                "Unexpected broker id, expected {} or empty string, but received {resource_name}",
                self.node_id
            )))
        }
    }

    /// Replaces the dynamic layer at `scope` by `values` (what AlterConfigs or the incremental operations
    /// made of the current layer).
    pub fn set_dynamic_configs(
        &self,
        scope: Scope,
        values: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), DynamicConfigError> {
        let layers = self.dynamic.layers();
        let current = layers.get(scope);
        let changed: Vec<String> = values
            .iter()
            .filter(|(k, v)| current.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .chain(current.keys().filter(|k| !values.contains_key(*k)))
            .cloned()
            .collect();
        for key in &changed {
            if let Some(v) = values.get(key) {
                keys::check(key, v, scope).map_err(DynamicConfigError::Refused)?;
            }
        }
        let mut next = layers.clone();
        match scope {
            Scope::ClusterDefault => next.cluster_default = values.clone(),
            Scope::Broker => next.broker = values.clone(),
        }
        let effective = next.overlay(&self.config);
        for listener in changed.iter().filter_map(|k| keys::tls_listener(k)) {
            self.check_tls_listener(&effective, listener)?;
        }
        if validate_only {
            return Ok(());
        }
        self.dynamic.replace(scope, values)?;
        tracing::info!(?scope, keys = ?changed, "dynamic broker configs changed");
        self.reapply_topic_configs();
        Ok(())
    }

    /// Open logs take the topic defaults the dynamic layers now give.
    pub fn reapply_topic_configs(&self) {
        for meta in self.all_topics() {
            let cfg = self.log_config(&meta.configs);
            for p in self.topic_partitions(&meta.name).unwrap_or_default() {
                p.set_config(cfg.clone());
            }
        }
    }

    /// A listener-scoped TLS key must name one of this broker's TLS listeners, and the certificate it
    /// leads to must load.
    fn check_tls_listener(
        &self,
        effective: &crate::config::BrokerConfig,
        listener: &str,
    ) -> Result<(), DynamicConfigError> {
        let specs = self
            .config
            .listener_specs()
            .map_err(|e| DynamicConfigError::Refused(e.to_string()))?;
        let Some(spec) = specs
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(listener) && s.protocol.uses_tls())
        else {
            return Err(DynamicConfigError::Refused(format!(
                "No TLS listener named {listener} on this broker"
            )));
        };
        TlsSettings::from_config(&spec.name, |k| effective.listener_value(&spec.name, k))
            .and_then(TlsAcceptor::new)
            .map(|_| ())
            .map_err(|e| DynamicConfigError::Refused(format!("Invalid dynamic configuration: {e}")))
    }
}
