//! Security as a layer under the handlers: listeners and their protocols, TLS, SASL, principals, the
//! authorizer with its ACLs, SCRAM credentials. The connection authenticates and puts a [`Principal`] in
//! the request context; handlers ask the authorizer through one helper (`RequestContext::authorize`).

pub mod acl;
pub mod acl_store;
pub mod authenticator;
pub mod config;
pub mod credentials;
pub mod listener;
pub mod listener_config;
pub mod oauth;
pub mod principal_mapping;
pub mod sasl;
pub mod tls;

use std::fmt;

pub use listener::Listener;
pub use listener_config::SecurityProtocol;

/// Who is asking, as Kafka writes it: `User:alice`. Unauthenticated listeners give `User:ANONYMOUS`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    pub kind: String,
    pub name: String,
}

impl Principal {
    pub fn user(name: impl Into<String>) -> Self {
        Principal {
            kind: "User".into(),
            name: name.into(),
        }
    }

    pub fn anonymous() -> Self {
        Principal::user("ANONYMOUS")
    }

    /// `Type:name`; the name may itself contain colons.
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, name) = s.split_once(':')?;
        (!kind.is_empty() && !name.is_empty()).then(|| Principal {
            kind: kind.to_string(),
            name: name.to_string(),
        })
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}
