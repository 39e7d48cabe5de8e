//! Which broker keys may change while the broker runs, at which scope, and Kafka's refusal for the rest
//! (`DynamicBrokerConfig` / `ControllerConfigurationValidator`: the same messages, so tools and users see
//! what they would see from Kafka). Only keys Runnel applies live are dynamic, plus Kafka's per-broker
//! Kerberos keys, which Kafka's own tooling (librdkafka's admin tests among them) sets to probe the API.

use runnel_storage::config::{topic_config_for_broker_key, validate_value, ConfigDef};

/// Where a dynamic value applies: every broker (resource name "") or this one (its node id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    ClusterDefault,
    Broker,
}

/// Connection limits, re-read by the accept loops when they change.
const CONNECTION_KEYS: &[&str] = &[
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
];

/// TLS keys a listener rebuilds its certificate from when they change (Kafka's
/// `SslConfigs.RECONFIGURABLE_CONFIGS`, less the inline and password forms: see [`INLINE_SECRETS`]).
const RECONFIGURABLE_TLS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.truststore.type",
    "ssl.truststore.location",
];

/// Key material given inline would be written to the data directory in the clear; Kafka encrypts such
/// values with `password.encoder.secret`, Runnel keeps them out of its files altogether.
const INLINE_SECRETS: &[&str] = &[
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.truststore.certificates",
    "ssl.truststore.password",
];

/// The key's definition if it may be set dynamically at `scope`, else the INVALID_REQUEST message.
pub fn dynamic_def(key: &str, scope: Scope) -> Result<&'static ConfigDef, String> {
    use crate::security::config::{gssapi_def, listener_override, LISTENER_CONFIGS};
    if let Some(def) = topic_config_for_broker_key(key) {
        return Ok(def);
    }
    if CONNECTION_KEYS.contains(&key) {
        return crate::config::find_def(key).ok_or_else(|| not_dynamic(key));
    }
    let per_broker = |def: &'static ConfigDef| {
        match scope {
        Scope::Broker => Ok(def),
        Scope::ClusterDefault => Err(format!(
            "Cannot update these configs at default cluster level, broker id must be specified: [{key}]"
        )),
    }
    };
    if let Some(def) = gssapi_def(key) {
        return per_broker(def);
    }
    if let Some((_, def)) = listener_override(key) {
        if INLINE_SECRETS.contains(&def.name) {
            return Err(format!(
                "{key} cannot be set dynamically: Runnel keeps key material out of its data directory; \
                 point ssl.keystore.location / ssl.truststore.location at a PEM file instead"
            ));
        }
        if RECONFIGURABLE_TLS.contains(&def.name) {
            return per_broker(def);
        }
        return Err(not_dynamic(key));
    }
    if LISTENER_CONFIGS.iter().any(|d| {
        d.name == key && (RECONFIGURABLE_TLS.contains(&key) || INLINE_SECRETS.contains(&key))
    }) {
        return Err(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: [{key}]"
        ));
    }
    if crate::config::find_def(key).is_some() {
        return Err(not_dynamic(key));
    }
    // Kafka stores unknown keys for plugins to read; Runnel has no plugins, so a typo is refused, not kept.
    Err(format!("Unknown broker config: {key}"))
}

fn not_dynamic(key: &str) -> String {
    format!("Cannot update these configs dynamically: [{key}]")
}

/// Checks that `key` may be set at `scope` and that `value` is valid for it.
pub fn check(key: &str, value: &str, scope: Scope) -> Result<(), String> {
    let def = dynamic_def(key, scope)?;
    validate_value(def, value).map_err(|e| match e {
        runnel_storage::StorageError::InvalidConfig { reason, .. } => {
            format!("Invalid value {value} for configuration {key}: {reason}")
        }
        other => other.to_string(),
    })
}

/// Whether DescribeConfigs reports the key as changeable (`read_only` false) at some scope.
pub fn is_dynamic(key: &str) -> bool {
    dynamic_def(key, Scope::Broker).is_ok()
}

/// The listener a TLS key is scoped to, for the keys that make a listener rebuild its certificate.
pub fn tls_listener(key: &str) -> Option<&str> {
    let (listener, def) = crate::security::config::listener_override(key)?;
    RECONFIGURABLE_TLS.contains(&def.name).then_some(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_and_refusals_follow_kafka() {
        assert!(check("log.retention.ms", "1000", Scope::ClusterDefault).is_ok());
        assert!(check("max.connections", "10", Scope::Broker).is_ok());
        assert!(check(
            "sasl.kerberos.min.time.before.relogin",
            "58000",
            Scope::Broker
        )
        .is_ok());
        let at_default = check(
            "sasl.kerberos.min.time.before.relogin",
            "1",
            Scope::ClusterDefault,
        )
        .unwrap_err();
        assert!(
            at_default.contains("broker id must be specified"),
            "{at_default}"
        );
        assert!(check("num.partitions", "3", Scope::ClusterDefault)
            .unwrap_err()
            .contains("Cannot update these configs dynamically: [num.partitions]"));
        assert!(check("ssl.keystore.location", "/x", Scope::Broker)
            .unwrap_err()
            .contains("only per-listener"));
        assert!(check(
            "listener.name.ssl.ssl.keystore.location",
            "/x",
            Scope::Broker
        )
        .is_ok());
        assert!(
            check("listener.name.ssl.ssl.keystore.key", "k", Scope::Broker)
                .unwrap_err()
                .contains("key material")
        );
        assert!(check("log.retention.ms", "abc", Scope::Broker)
            .unwrap_err()
            .starts_with("Invalid value abc for configuration log.retention.ms"));
        assert!(check("no.such.key", "1", Scope::Broker).is_err());
        assert_eq!(
            tls_listener("listener.name.ssl.ssl.keystore.location"),
            Some("ssl")
        );
    }
}
