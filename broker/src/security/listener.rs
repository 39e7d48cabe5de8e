//! A bound listener as connections see it: its name and protocol, the address Metadata gives its clients,
//! its TLS acceptor, its SASL mechanisms and principal mapping.

use std::sync::Arc;

use super::config::MECHANISMS;
use super::listener_config::{ListenerSpec, SecurityProtocol};
use super::principal_mapping::PrincipalMapper;
use super::tls::{TlsAcceptor, TlsSettings};
use crate::config::BrokerConfig;

#[derive(Debug, thiserror::Error)]
pub enum ListenerSetupError {
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    #[error("listener {listener}: {what}")]
    Invalid { listener: String, what: String },
}

/// The listener hosted jobs come in on (in process, no socket).
const INTERNAL: &str = "INTERNAL";

pub struct Listener {
    pub name: String,
    pub protocol: SecurityProtocol,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub tls: Option<TlsAcceptor>,
    /// Upper-case SASL names, in the order configured.
    pub mechanisms: Vec<String>,
    /// `connections.max.reauth.ms`; 0 means sessions never expire.
    pub reauth_ms: i64,
    pub principal_mapper: PrincipalMapper,
    /// JWT validation for OAUTHBEARER, when the listener enables it.
    pub oauth: Option<super::oauth::OAuthValidator>,
}

impl Listener {
    pub fn new(
        spec: &ListenerSpec,
        config: &BrokerConfig,
        advertised_host: String,
        advertised_port: i32,
    ) -> Result<Arc<Self>, ListenerSetupError> {
        let get = |k: &str| config.listener_value(&spec.name, k);
        let invalid = |what: String| ListenerSetupError::Invalid {
            listener: spec.name.clone(),
            what,
        };
        let tls = if spec.protocol.uses_tls() {
            Some(TlsAcceptor::new(TlsSettings::from_config(
                &spec.name, get,
            )?)?)
        } else {
            None
        };
        let mechanisms: Vec<String> = get("sasl.enabled.mechanisms")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_ascii_uppercase())
            .filter(|m| !m.is_empty())
            .collect();
        if spec.protocol.uses_sasl() {
            if mechanisms.is_empty() {
                return Err(invalid("sasl.enabled.mechanisms is empty".into()));
            }
            if let Some(m) = mechanisms
                .iter()
                .find(|m| !MECHANISMS.contains(&m.to_ascii_lowercase().as_str()))
            {
                return Err(invalid(format!("unsupported SASL mechanism {m}")));
            }
        }
        let oauth =
            if mechanisms.iter().any(|m| m == "OAUTHBEARER") {
                match super::oauth::OAuthValidator::from_config(&get) {
                    Some(v) => Some(v),
                    None => return Err(invalid(
                        "OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url (file:// or http://)"
                            .into(),
                    )),
                }
            } else {
                None
            };
        let rules = get("ssl.principal.mapping.rules").unwrap_or_else(|| "DEFAULT".into());
        let principal_mapper =
            PrincipalMapper::parse(&rules).map_err(|e| invalid(e.to_string()))?;
        Ok(Arc::new(Listener {
            name: spec.name.clone(),
            protocol: spec.protocol,
            advertised_host,
            advertised_port,
            tls,
            mechanisms,
            reauth_ms: get("connections.max.reauth.ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
                .max(0),
            principal_mapper,
            oauth,
        }))
    }

    /// A listener for in-process callers (co-located jobs, the fuzzer): plaintext, never bound.
    pub fn is_internal(&self) -> bool {
        self.name == INTERNAL
    }

    pub fn internal(advertised_host: String, advertised_port: i32) -> Arc<Self> {
        Arc::new(Listener {
            name: INTERNAL.into(),
            protocol: SecurityProtocol::Plaintext,
            advertised_host,
            advertised_port,
            tls: None,
            mechanisms: Vec::new(),
            reauth_ms: 0,
            principal_mapper: PrincipalMapper::default_rules(),
            oauth: None,
        })
    }
}
