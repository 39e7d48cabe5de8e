//! Listeners as Kafka names them: `listeners=NAME://HOST:PORT,...`, `advertised.listeners` and
//! `listener.security.protocol.map` (the listener's name is its protocol unless the map says otherwise).

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(Self::Plaintext),
            "SSL" => Some(Self::Ssl),
            "SASL_PLAINTEXT" => Some(Self::SaslPlaintext),
            "SASL_SSL" => Some(Self::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Plaintext => "PLAINTEXT",
            Self::Ssl => "SSL",
            Self::SaslPlaintext => "SASL_PLAINTEXT",
            Self::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One configured listener before it is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// Upper case, as Kafka normalises it; per-listener keys use its lower-case form.
    pub name: String,
    pub protocol: SecurityProtocol,
    /// What to bind, `HOST:PORT` (an empty host binds every interface, as in Kafka).
    pub bind: String,
    /// What Metadata tells clients of this listener; `None` means the bound address.
    pub advertised: Option<(String, i32)>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenerError {
    #[error("'{0}' is not of the form NAME://HOST:PORT")]
    Malformed(String),
    #[error("listener {0} appears twice")]
    Duplicate(String),
    #[error(
        "listener {0} has no security protocol: add {0}:PROTOCOL to listener.security.protocol.map"
    )]
    NoProtocol(String),
    #[error("'{0}' in listener.security.protocol.map is not NAME:PROTOCOL with PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL")]
    BadMapEntry(String),
    #[error("advertised listener {0} is not among the listeners")]
    UnknownAdvertised(String),
    #[error("no listeners configured")]
    Empty,
}

/// `NAME://HOST:PORT` → (NAME, HOST, PORT). IPv6 hosts come bracketed (`[::1]`).
fn parse_endpoint(entry: &str) -> Result<(String, String, i32), ListenerError> {
    let bad = || ListenerError::Malformed(entry.to_string());
    let (name, addr) = entry.trim().split_once("://").ok_or_else(bad)?;
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: i32 = port.parse().map_err(|_| bad())?;
    if name.is_empty() || !(0..=65535).contains(&port) {
        return Err(bad());
    }
    Ok((name.to_ascii_uppercase(), host.to_string(), port))
}

fn entries(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn protocol_map(map: &str) -> Result<BTreeMap<String, SecurityProtocol>, ListenerError> {
    entries(map)
        .map(|e| {
            let (name, proto) = e
                .split_once(':')
                .ok_or_else(|| ListenerError::BadMapEntry(e.to_string()))?;
            let proto = SecurityProtocol::parse(proto)
                .ok_or_else(|| ListenerError::BadMapEntry(e.to_string()))?;
            Ok((name.trim().to_ascii_uppercase(), proto))
        })
        .collect()
}

/// Parses the three keys together, as Kafka validates them together.
pub fn parse(
    listeners: &str,
    advertised: &str,
    map: &str,
) -> Result<Vec<ListenerSpec>, ListenerError> {
    let map = protocol_map(map)?;
    let mut specs: Vec<ListenerSpec> = Vec::new();
    for entry in entries(listeners) {
        let (name, host, port) = parse_endpoint(entry)?;
        if specs.iter().any(|s| s.name == name) {
            return Err(ListenerError::Duplicate(name));
        }
        let protocol = *map
            .get(&name)
            .ok_or_else(|| ListenerError::NoProtocol(name.clone()))?;
        specs.push(ListenerSpec {
            name,
            protocol,
            bind: format!("{host}:{port}"),
            advertised: None,
        });
    }
    if specs.is_empty() {
        return Err(ListenerError::Empty);
    }
    for entry in entries(advertised) {
        let (name, host, port) = parse_endpoint(entry)?;
        let spec = specs
            .iter_mut()
            .find(|s| s.name == name)
            .ok_or_else(|| ListenerError::UnknownAdvertised(name.clone()))?;
        spec.advertised = Some((host, port));
    }
    Ok(specs)
}

/// The `--listen` / `--advertised` shorthand: one PLAINTEXT listener.
pub fn plaintext(bind: &str, advertised: Option<(String, i32)>) -> ListenerSpec {
    ListenerSpec {
        name: "PLAINTEXT".into(),
        protocol: SecurityProtocol::Plaintext,
        bind: bind.to_string(),
        advertised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::config::DEFAULT_PROTOCOL_MAP;

    #[test]
    fn names_default_to_their_protocol_and_the_map_renames() {
        let specs = parse(
            "PLAINTEXT://127.0.0.1:9092,sasl_ssl://:9094,MTLS://[::1]:0",
            "SASL_SSL://broker.example:19094",
            &format!("{DEFAULT_PROTOCOL_MAP},MTLS:SSL"),
        )
        .unwrap();
        assert_eq!(specs.len(), 3);
        assert_eq!(specs[0].protocol, SecurityProtocol::Plaintext);
        assert_eq!(specs[1].name, "SASL_SSL");
        assert_eq!(specs[1].bind, ":9094");
        assert_eq!(
            specs[1].advertised,
            Some(("broker.example".to_string(), 19094))
        );
        assert_eq!(specs[2].protocol, SecurityProtocol::Ssl);
        assert_eq!(specs[2].bind, "[::1]:0");
    }

    #[test]
    fn mistakes_are_named() {
        let map = DEFAULT_PROTOCOL_MAP;
        assert_eq!(
            parse("INTERNAL://h:1", "", map),
            Err(ListenerError::NoProtocol("INTERNAL".into()))
        );
        assert!(matches!(
            parse("PLAINTEXT://h", "", map),
            Err(ListenerError::Malformed(_))
        ));
        assert!(matches!(
            parse("PLAINTEXT://h:1,PLAINTEXT://h:2", "", map),
            Err(ListenerError::Duplicate(_))
        ));
        assert!(matches!(
            parse("PLAINTEXT://h:1", "SSL://h:2", map),
            Err(ListenerError::UnknownAdvertised(_))
        ));
        assert!(matches!(
            parse("X://h:1", "", "X:TLS"),
            Err(ListenerError::BadMapEntry(_))
        ));
        assert_eq!(parse(" ", "", map), Err(ListenerError::Empty));
    }
}
