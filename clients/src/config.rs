//! Connection settings shared by the producer, consumer and admin client (Kafka's names in the docs).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// bootstrap.servers: comma-separated HOST:PORT list.
    pub bootstrap: String,
    /// client.id
    pub client_id: String,
    /// request.timeout.ms: how long one request may take, and how long connecting may take.
    pub request_timeout: Duration,
    /// retry.backoff.ms
    pub retry_backoff: Duration,
    /// How many times a retriable failure is retried before it is returned.
    pub retries: u32,
    /// security.protocol with its TLS and SASL settings.
    pub security: crate::security::Security,
}

impl ClientConfig {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        ClientConfig {
            bootstrap: bootstrap.into(),
            client_id: "runnel".into(),
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            retries: 10,
            security: crate::security::Security::default(),
        }
    }

    pub fn with_client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = id.into();
        self
    }

    pub fn with_request_timeout(mut self, t: Duration) -> Self {
        self.request_timeout = t;
        self
    }

    pub fn with_security(mut self, security: crate::security::Security) -> Self {
        self.security = security;
        self
    }

    pub fn bootstrap_addrs(&self) -> Vec<String> {
        self.bootstrap
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }
}
