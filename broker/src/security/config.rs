//! The security keys, with Kafka's names, and the per-listener overrides Kafka allows for them
//! (`listener.name.<listener>.<key>`, e.g. `listener.name.mtls.ssl.client.auth=required`).

use runnel_storage::config::{ConfigDef, ConfigType};

const fn def(
    name: &'static str,
    default: &'static str,
    kind: ConfigType,
    sensitive: bool,
) -> ConfigDef {
    ConfigDef {
        name,
        broker_synonym: None,
        default,
        kind,
        min: None,
        sensitive,
    }
}

/// Mechanisms Runnel serves (SASL names, compared case-insensitively).
pub const MECHANISMS: &[&str] = &["plain", "scram-sha-256", "scram-sha-512", "oauthbearer"];

/// Keys that may also be set per listener.
pub const LISTENER_CONFIGS: &[ConfigDef] = &[
    def(
        "ssl.keystore.type",
        "PEM",
        ConfigType::Choice(&["pem"]),
        false,
    ),
    def("ssl.keystore.location", "", ConfigType::String, false),
    // Kafka's PEM-in-config forms; the values are key material, so they are reported as sensitive.
    def(
        "ssl.keystore.certificate.chain",
        "",
        ConfigType::String,
        true,
    ),
    def("ssl.keystore.key", "", ConfigType::String, true),
    def("ssl.key.password", "", ConfigType::String, true),
    def("ssl.keystore.password", "", ConfigType::String, true),
    def(
        "ssl.truststore.type",
        "PEM",
        ConfigType::Choice(&["pem"]),
        false,
    ),
    def("ssl.truststore.location", "", ConfigType::String, false),
    def("ssl.truststore.certificates", "", ConfigType::String, true),
    def("ssl.truststore.password", "", ConfigType::String, true),
    def(
        "ssl.client.auth",
        "none",
        ConfigType::Choice(&["none", "requested", "required"]),
        false,
    ),
    def(
        "ssl.enabled.protocols",
        "TLSv1.2,TLSv1.3",
        ConfigType::List(&["tlsv1.2", "tlsv1.3"]),
        false,
    ),
    def(
        "ssl.protocol",
        "TLSv1.3",
        ConfigType::Choice(&["tls", "tlsv1.2", "tlsv1.3"]),
        false,
    ),
    def(
        "ssl.principal.mapping.rules",
        "DEFAULT",
        ConfigType::String,
        false,
    ),
    def(
        "sasl.enabled.mechanisms",
        "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        ConfigType::List(MECHANISMS),
        false,
    ),
    def("connections.max.reauth.ms", "0", ConfigType::Long, false),
    // KIP-768: how OAUTHBEARER tokens are validated.
    def(
        "sasl.oauthbearer.jwks.endpoint.url",
        "",
        ConfigType::String,
        false,
    ),
    def(
        "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        "3600000",
        ConfigType::Long,
        false,
    ),
    def(
        "sasl.oauthbearer.expected.audience",
        "",
        ConfigType::String,
        false,
    ),
    def(
        "sasl.oauthbearer.expected.issuer",
        "",
        ConfigType::String,
        false,
    ),
    def(
        "sasl.oauthbearer.sub.claim.name",
        "sub",
        ConfigType::String,
        false,
    ),
    def(
        "sasl.oauthbearer.scope.claim.name",
        "scope",
        ConfigType::String,
        false,
    ),
    def(
        "sasl.oauthbearer.clock.skew.seconds",
        "30",
        ConfigType::Long,
        false,
    ),
];

/// Broker-wide security keys.
pub const SECURITY_CONFIGS: &[ConfigDef] = &[
    def("listeners", "", ConfigType::String, false),
    def("advertised.listeners", "", ConfigType::String, false),
    def(
        "listener.security.protocol.map",
        DEFAULT_PROTOCOL_MAP,
        ConfigType::String,
        false,
    ),
    def("inter.broker.listener.name", "", ConfigType::String, false),
    def("authorizer.class.name", "", ConfigType::String, false),
    def("super.users", "", ConfigType::String, false),
    def("quota.window.num", "11", ConfigType::Int, false),
    def("quota.window.size.seconds", "1", ConfigType::Int, false),
    // Runnel's own: the principal co-located jobs act as when the authorizer is on.
    def(
        "jobs.principal",
        "User:ANONYMOUS",
        ConfigType::String,
        false,
    ),
    def(
        "allow.everyone.if.no.acl.found",
        "false",
        ConfigType::Boolean,
        false,
    ),
];

/// Kafka's Kerberos keys. Runnel has no GSSAPI, so they change nothing; they are accepted (statically, and
/// dynamically per broker as Kafka allows) because configs and admin tools written for Kafka set them.
pub const GSSAPI_CONFIGS: &[ConfigDef] = &[
    def("sasl.kerberos.service.name", "", ConfigType::String, false),
    def(
        "sasl.kerberos.kinit.cmd",
        "/usr/bin/kinit",
        ConfigType::String,
        false,
    ),
    def(
        "sasl.kerberos.ticket.renew.window.factor",
        "0.8",
        ConfigType::Double,
        false,
    ),
    def(
        "sasl.kerberos.ticket.renew.jitter",
        "0.05",
        ConfigType::Double,
        false,
    ),
    def(
        "sasl.kerberos.min.time.before.relogin",
        "60000",
        ConfigType::Long,
        false,
    ),
    def(
        "sasl.kerberos.principal.to.local.rules",
        "DEFAULT",
        ConfigType::String,
        false,
    ),
];

pub fn gssapi_def(key: &str) -> Option<&'static ConfigDef> {
    GSSAPI_CONFIGS.iter().find(|d| d.name == key)
}

pub const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

pub fn find(key: &str) -> Option<&'static ConfigDef> {
    SECURITY_CONFIGS
        .iter()
        .chain(LISTENER_CONFIGS)
        .chain(GSSAPI_CONFIGS)
        .find(|d| d.name == key)
}

/// `listener.name.<listener>.<key>` → (listener, the key's definition).
pub fn listener_override(key: &str) -> Option<(&str, &'static ConfigDef)> {
    let rest = key.strip_prefix("listener.name.")?;
    let (listener, inner) = rest.split_once('.')?;
    let def = LISTENER_CONFIGS.iter().find(|d| d.name == inner)?;
    (!listener.is_empty()).then_some((listener, def))
}

/// The explanation given for Kafka's JAAS keys, which would put passwords in the config.
pub fn jaas_refusal(key: &str) -> Option<&'static str> {
    key.ends_with("sasl.jaas.config").then_some(
        "Runnel keeps SASL users in its SCRAM credential store, never as passwords in the config: \
         add them with `runnel users set NAME --data-dir DIR` before the first start, or online with \
         kafka-configs.sh --alter --entity-type users --add-config 'SCRAM-SHA-512=[password=...]'",
    )
}
