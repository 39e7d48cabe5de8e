//! TLS for SSL and SASL_SSL listeners (rustls): the listener's certificate chain and key from PEM
//! (`ssl.keystore.location`, or Kafka's inline `ssl.keystore.certificate.chain` + `ssl.keystore.key`),
//! client certificates checked against `ssl.truststore.*` when `ssl.client.auth` asks for them, TLS 1.2 /
//! 1.3 as `ssl.enabled.protocols` allows. The files are watched: a changed certificate is used for the next
//! handshake, without a restart.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("listener {listener}: {what}")]
    Config { listener: String, what: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

impl ClientAuth {
    pub fn parse(s: &str) -> Self {
        match s.trim().to_ascii_lowercase().as_str() {
            "required" => Self::Required,
            "requested" => Self::Requested,
            _ => Self::None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Pem::File(p) => std::fs::read(p),
            Pem::Inline(s) => Ok(s.clone().into_bytes()),
        }
    }

    fn modified(&self) -> Option<SystemTime> {
        match self {
            Pem::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            Pem::Inline(_) => None,
        }
    }
}

/// What a listener's TLS is made from, read from its (possibly listener-prefixed) keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub listener: String,
    chain: Pem,
    key: Pem,
    trust: Option<Pem>,
    pub client_auth: ClientAuth,
    tls12: bool,
    tls13: bool,
}

impl TlsSettings {
    /// `get` answers a key for this listener (its override, else the broker-wide value, else `None`).
    pub fn from_config(
        listener: &str,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TlsError> {
        let err = |what: String| TlsError::Config {
            listener: listener.to_string(),
            what,
        };
        let nonempty = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let (chain, key) = match (
            nonempty("ssl.keystore.location"),
            nonempty("ssl.keystore.certificate.chain"),
            nonempty("ssl.keystore.key"),
        ) {
            (Some(path), None, None) => {
                let p = Pem::File(PathBuf::from(path));
                (p.clone(), p)
            }
            (None, Some(chain), Some(key)) => (Pem::Inline(chain), Pem::Inline(key)),
            _ => {
                return Err(err(
                    "needs ssl.keystore.location (a PEM file with the private key and certificate chain), \
                     or ssl.keystore.certificate.chain with ssl.keystore.key"
                        .into(),
                ))
            }
        };
        if nonempty("ssl.key.password").is_some() || nonempty("ssl.keystore.password").is_some() {
            return Err(err(
                "encrypted keys are not supported: give the private key unencrypted (PKCS#8 PEM) in a file \
                 only the broker can read"
                    .into(),
            ));
        }
        let trust = match (
            nonempty("ssl.truststore.location"),
            nonempty("ssl.truststore.certificates"),
        ) {
            (Some(p), _) => Some(Pem::File(PathBuf::from(p))),
            (None, Some(c)) => Some(Pem::Inline(c)),
            (None, None) => None,
        };
        let client_auth = ClientAuth::parse(&get("ssl.client.auth").unwrap_or_default());
        if client_auth != ClientAuth::None && trust.is_none() {
            return Err(err(
                "ssl.client.auth needs ssl.truststore.location (the CA certificates client certificates are checked against)".into(),
            ));
        }
        let protocols = get("ssl.enabled.protocols")
            .unwrap_or_else(|| "TLSv1.2,TLSv1.3".into())
            .to_ascii_lowercase();
        let tls12 = protocols.split(',').any(|p| p.trim() == "tlsv1.2");
        let tls13 = protocols.split(',').any(|p| p.trim() == "tlsv1.3");
        if !tls12 && !tls13 {
            return Err(err(
                "ssl.enabled.protocols allows neither TLSv1.2 nor TLSv1.3".into(),
            ));
        }
        Ok(TlsSettings {
            listener: listener.to_string(),
            chain,
            key,
            trust,
            client_auth,
            tls12,
            tls13,
        })
    }

    fn err(&self, what: impl Into<String>) -> TlsError {
        TlsError::Config {
            listener: self.listener.clone(),
            what: what.into(),
        }
    }

    fn stamp(&self) -> Vec<Option<SystemTime>> {
        let mut files = vec![self.chain.modified(), self.key.modified()];
        if let Some(t) = &self.trust {
            files.push(t.modified());
        }
        files
    }

    fn build(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let chain_pem = self
            .chain
            .read()
            .map_err(|e| self.err(format!("cannot read the certificate chain: {e}")))?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(format!("bad certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(self.err("no certificate found in the keystore PEM"));
        }
        let key_pem = self
            .key
            .read()
            .map_err(|e| self.err(format!("cannot read the private key: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| self.err(format!("no usable private key in the keystore PEM: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut versions = Vec::new();
        if self.tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if self.tls12 {
            versions.push(&rustls::version::TLS12);
        }
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| self.err(e.to_string()))?;
        let builder = match (&self.trust, self.client_auth) {
            (Some(trust), ClientAuth::Requested | ClientAuth::Required) => {
                let pem = trust
                    .read()
                    .map_err(|e| self.err(format!("cannot read the truststore: {e}")))?;
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(&pem) {
                    let cert = cert.map_err(|e| self.err(format!("bad truststore PEM: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| self.err(format!("bad truststore certificate: {e}")))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if self.client_auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| self.err(format!("truststore: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
            _ => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| self.err(format!("certificate and key do not fit together: {e}")))?;
        Ok(Arc::new(config))
    }
}

/// A listener's TLS configuration, rebuilt when its files change or its settings are replaced (a dynamic
/// keystore change).
pub struct TlsAcceptor {
    current: RwLock<Current>,
}

struct Current {
    settings: TlsSettings,
    config: Arc<ServerConfig>,
    stamp: Vec<Option<SystemTime>>,
}

impl TlsAcceptor {
    pub fn new(settings: TlsSettings) -> Result<Self, TlsError> {
        let stamp = settings.stamp();
        let config = settings.build()?;
        Ok(TlsAcceptor {
            current: RwLock::new(Current {
                settings,
                config,
                stamp,
            }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Current> {
        self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Current> {
        self.current.write().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.read().config)
    }

    /// Rebuilds when a file changed; a broken new file keeps the old certificate in use (and says so).
    pub fn reload_if_changed(&self) {
        let (settings, stamp) = {
            let current = self.read();
            let stamp = current.settings.stamp();
            if current.stamp == stamp {
                return;
            }
            (current.settings.clone(), stamp)
        };
        match settings.build() {
            Ok(config) => {
                let mut current = self.write();
                current.config = config;
                current.stamp = stamp;
                tracing::info!(listener = %settings.listener, "TLS certificate reloaded");
            }
            Err(e) => {
                // Remember the stamp so a broken file is reported once, not on every check.
                self.write().stamp = stamp;
                tracing::error!(error = %e, "TLS files changed but cannot be used; keeping the previous certificate");
            }
        }
    }

    /// Switches to new settings (other files); on error the current certificate stays in use.
    pub fn use_settings(&self, settings: TlsSettings) -> Result<(), TlsError> {
        if self.read().settings == settings {
            return Ok(());
        }
        let stamp = settings.stamp();
        let config = settings.build()?;
        tracing::info!(listener = %settings.listener, "TLS settings changed; new certificate in use");
        *self.write() = Current {
            settings,
            config,
            stamp,
        };
        Ok(())
    }

    pub fn client_auth(&self) -> ClientAuth {
        self.read().settings.client_auth
    }
}

/// The subject of a client certificate in RFC 2253 form (`CN=alice,O=runnel`), as Java's
/// `X500Principal.getName()` gives it to Kafka's principal builder.
pub fn certificate_subject(der: &[u8]) -> Option<String> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(cert.tbs_certificate.subject.to_string())
}
