//! Client-side security with Kafka's client config names: `security.protocol`, `ssl.truststore.location`
//! (or librdkafka's `ssl.ca.location`), `ssl.keystore.location` (PEM key + chain, for mTLS; or
//! `ssl.certificate.location` + `ssl.key.location`), `ssl.endpoint.identification.algorithm`,
//! `sasl.mechanism` with the user from `sasl.jaas.config` (or `sasl.username` / `sasl.password`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig as TlsConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;

use crate::error::{ClientError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    pub fn uses_tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }
    pub fn uses_sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }
}

#[derive(Clone, Default)]
pub struct Security {
    pub protocol: Protocol,
    pub tls: Option<Arc<TlsConfig>>,
    pub sasl: Option<SaslCredentials>,
}

impl std::fmt::Debug for Security {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Security")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field(
                "sasl",
                &self.sasl.as_ref().map(|s| (&s.mechanism, &s.username)),
            )
            .finish()
    }
}

#[derive(Clone)]
pub struct SaslCredentials {
    /// Upper case: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

fn invalid(what: impl Into<String>) -> ClientError {
    ClientError::Invalid(what.into())
}

impl Security {
    /// Reads the security keys of a Kafka client config; other keys are left to the caller.
    pub fn from_properties(props: &BTreeMap<String, String>) -> Result<Self> {
        let get = |k: &str| {
            props
                .get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let protocol = match get("security.protocol")
            .unwrap_or_else(|| "PLAINTEXT".into())
            .to_ascii_uppercase()
            .as_str()
        {
            "PLAINTEXT" => Protocol::Plaintext,
            "SSL" => Protocol::Ssl,
            "SASL_PLAINTEXT" => Protocol::SaslPlaintext,
            "SASL_SSL" => Protocol::SaslSsl,
            other => {
                return Err(invalid(format!(
                "security.protocol {other} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
            )))
            }
        };
        let tls = if protocol.uses_tls() {
            Some(Arc::new(tls_config(&get)?))
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            let mechanism = get("sasl.mechanism")
                .unwrap_or_else(|| "GSSAPI".into())
                .to_ascii_uppercase();
            if !["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"].contains(&mechanism.as_str()) {
                return Err(invalid(format!("sasl.mechanism {mechanism} is not supported by this client (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)")));
            }
            let jaas = get("sasl.jaas.config").unwrap_or_default();
            let username = get("sasl.username").or_else(|| jaas_option(&jaas, "username"));
            let password = get("sasl.password").or_else(|| jaas_option(&jaas, "password"));
            match (username, password) {
                (Some(username), Some(password)) => Some(SaslCredentials { mechanism, username, password }),
                _ => return Err(invalid("SASL needs a user: sasl.jaas.config with username=\"...\" password=\"...\" (or sasl.username / sasl.password)")),
            }
        } else {
            None
        };
        Ok(Security {
            protocol,
            tls,
            sasl,
        })
    }
}

/// `username="alice"` out of a JAAS line such as
/// `org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="x";`.
fn jaas_option(jaas: &str, key: &str) -> Option<String> {
    let mut rest = jaas;
    while let Some(at) = rest.find(key) {
        let before_ok = at == 0 || rest[..at].ends_with(char::is_whitespace);
        let after = rest[at + key.len()..].trim_start();
        if before_ok {
            if let Some(value) = after.strip_prefix('=') {
                let value = value.trim_start();
                return match value.strip_prefix('"') {
                    Some(quoted) => quoted.find('"').map(|end| quoted[..end].to_string()),
                    None => value
                        .split(|c: char| c.is_whitespace() || c == ';')
                        .next()
                        .map(String::from),
                };
            }
        }
        rest = &rest[at + key.len()..];
    }
    None
}

fn read_pem(path: &str) -> Result<Vec<u8>> {
    std::fs::read(PathBuf::from(path)).map_err(|e| invalid(format!("cannot read {path}: {e}")))
}

fn tls_config(get: &dyn Fn(&str) -> Option<String>) -> Result<TlsConfig> {
    if let Some(t) = get("ssl.truststore.type").filter(|t| !t.eq_ignore_ascii_case("PEM")) {
        return Err(invalid(format!(
            "ssl.truststore.type {t}: this client reads PEM files only"
        )));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = TlsConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?;
    let verify_hostname = get("ssl.endpoint.identification.algorithm")
        .is_none_or(|a| a.eq_ignore_ascii_case("https"));
    let mut roots = RootCertStore::empty();
    let ca = get("ssl.truststore.location").or_else(|| get("ssl.ca.location"));
    let Some(ca) = ca else {
        return Err(invalid(
            "TLS needs ssl.truststore.location (a PEM file of CA certificates)",
        ));
    };
    for cert in CertificateDer::pem_slice_iter(&read_pem(&ca)?) {
        let cert = cert.map_err(|e| invalid(format!("{ca}: {e}")))?;
        roots.add(cert).map_err(|e| invalid(format!("{ca}: {e}")))?;
    }
    let roots = Arc::new(roots);
    let builder = if verify_hostname {
        builder.with_root_certificates(roots)
    } else {
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameCheck(verifier)))
    };
    let (chain_path, key_path) = match (
        get("ssl.keystore.location"),
        get("ssl.certificate.location"),
        get("ssl.key.location"),
    ) {
        (Some(k), _, _) => (Some(k.clone()), Some(k)),
        (None, Some(c), Some(k)) => (Some(c), Some(k)),
        _ => (None, None),
    };
    match (chain_path, key_path) {
        (Some(c), Some(k)) => {
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_slice_iter(&read_pem(&c)?)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| invalid(format!("{c}: {e}")))?;
            let key = PrivateKeyDer::from_pem_slice(&read_pem(&k)?)
                .map_err(|e| invalid(format!("{k}: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| invalid(format!("client certificate: {e}")))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain is still checked, the name is not.
#[derive(Debug)]
struct NoHostnameCheck(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_user_and_password() {
        let j = r#"org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="p w=1";"#;
        assert_eq!(jaas_option(j, "username").as_deref(), Some("alice"));
        assert_eq!(jaas_option(j, "password").as_deref(), Some("p w=1"));
        assert_eq!(
            jaas_option("x required username=bob;", "username").as_deref(),
            Some("bob")
        );
        assert_eq!(jaas_option("x required", "username"), None);
    }
}
