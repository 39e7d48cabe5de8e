//! JSON Web Key Sets for OAUTHBEARER (KIP-768's `sasl.oauthbearer.jwks.endpoint.url`): RSA and EC P-256 /
//! P-384 public keys by `kid`, from a `file://` path or an `http://` URL, refreshed every
//! `sasl.oauthbearer.jwks.endpoint.refresh.ms` and at once (at most every 10 s) when a token names a key
//! the set does not have, as Kafka's refreshing key resolver does.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

#[derive(Debug, Clone)]
pub enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point (0x04 ‖ x ‖ y) and its curve's JWS algorithm.
    Ec {
        point: Vec<u8>,
        p384: bool,
    },
}

impl PublicKey {
    /// Checks a JWS signature for the token's `alg`; an algorithm that does not fit the key fails.
    pub fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> bool {
        match (self, alg) {
            (PublicKey::Rsa { n, e }, "RS256" | "RS384" | "RS512") => {
                let params = match alg {
                    "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                    "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                    _ => &signature::RSA_PKCS1_2048_8192_SHA512,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, sig)
                    .is_ok()
            }
            (PublicKey::Ec { point, p384: false }, "ES256") => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            (PublicKey::Ec { point, p384: true }, "ES384") => {
                UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    usage: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

fn b64(s: &Option<String>) -> Option<Vec<u8>> {
    B64URL.decode(s.as_deref()?.trim_end_matches('=')).ok()
}

/// Parses a JWKS document; keys not for signatures, or of kinds Runnel cannot use, are skipped.
pub fn parse(text: &str) -> Result<HashMap<String, PublicKey>, String> {
    let set: JwkSet = serde_json::from_str(text).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut keys = HashMap::new();
    for k in set.keys {
        if k.usage.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let key = match k.kty.as_str() {
            "RSA" => match (b64(&k.n), b64(&k.e)) {
                (Some(n), Some(e)) => PublicKey::Rsa { n, e },
                _ => continue,
            },
            "EC" => {
                let p384 = match k.crv.as_deref() {
                    Some("P-256") => false,
                    Some("P-384") => true,
                    _ => continue,
                };
                let (Some(x), Some(y)) = (b64(&k.x), b64(&k.y)) else {
                    continue;
                };
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                PublicKey::Ec { point, p384 }
            }
            _ => continue,
        };
        keys.insert(k.kid.unwrap_or_default(), key);
    }
    Ok(keys)
}

/// Fetches the document at `url` (`file://PATH` or `http://HOST:PORT/PATH`).
pub async fn fetch(url: &str) -> Result<String, String> {
    if let Some(path) = url.strip_prefix("file://") {
        return tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("cannot read {path}: {e}"));
    }
    if let Some(rest) = url.strip_prefix("http://") {
        return http_get(rest).await;
    }
    Err(format!(
        "{url}: sasl.oauthbearer.jwks.endpoint.url must be file:// or http:// (put an https JWKS behind a local file or proxy)"
    ))
}

/// A plain HTTP/1.1 GET, enough for a JWKS endpoint; bounded in time and size.
async fn http_get(rest: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        let req = format!(
            "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut body = Vec::new();
        stream
            .take(4 * 1024 * 1024)
            .read_to_end(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or("malformed HTTP response")?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(format!(
                "JWKS endpoint answered {}",
                head.lines().next().unwrap_or_default()
            ));
        }
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Err("chunked JWKS responses are not supported".into());
        }
        Ok(body.to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| format!("JWKS endpoint {addr} timed out"))?
}

/// The current keys, when they were last fetched, and whether that fetch failed.
pub struct KeyCache {
    pub url: String,
    pub refresh: Duration,
    keys: RwLock<(HashMap<String, PublicKey>, Option<Instant>, bool)>,
    /// Set when a token named an unknown key: the next tick refetches early.
    pub wanted: std::sync::atomic::AtomicBool,
}

/// The soonest an unknown `kid` may trigger another fetch.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);

/// How soon a failed fetch is tried again (the last good keys stay in use meanwhile).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

impl KeyCache {
    pub fn new(url: String, refresh: Duration) -> Self {
        KeyCache {
            url,
            refresh,
            keys: RwLock::new((HashMap::new(), None, false)),
            wanted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn key(&self, kid: &str) -> Option<PublicKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.0.get(kid).cloned()
    }

    pub fn due(&self) -> bool {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        match keys.1 {
            None => true,
            Some(at) => {
                (keys.2 && at.elapsed() >= RETRY_AFTER_FAILURE)
                    || at.elapsed() >= self.refresh
                    || (self.wanted.load(std::sync::atomic::Ordering::Relaxed)
                        && at.elapsed() >= MIN_REFETCH)
            }
        }
    }

    pub async fn refresh_now(&self) -> Result<usize, String> {
        let text = fetch(&self.url).await;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.1 = Some(Instant::now());
        self.wanted
            .store(false, std::sync::atomic::Ordering::Relaxed);
        keys.2 = true;
        let parsed = parse(&text?)?;
        let n = parsed.len();
        keys.0 = parsed;
        keys.2 = false;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_fetch_is_retried_soon_and_a_good_one_waits_for_the_refresh_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        let cache = KeyCache::new(
            format!("file://{}", path.display()),
            Duration::from_secs(3600),
        );
        assert!(cache.due(), "never fetched");
        assert!(cache.refresh_now().await.is_err(), "no file yet");
        assert!(!cache.due(), "not retried in a tight loop");
        std::fs::write(&path, r#"{"keys": []}"#).expect("write");
        // The retry delay is the behaviour under test, so the test lets that much time pass.
        tokio::time::sleep(RETRY_AFTER_FAILURE + Duration::from_millis(100)).await;
        assert!(
            cache.due(),
            "a failure is retried after {RETRY_AFTER_FAILURE:?}"
        );
        assert_eq!(cache.refresh_now().await, Ok(0));
        tokio::time::sleep(RETRY_AFTER_FAILURE + Duration::from_millis(100)).await;
        assert!(!cache.due(), "a good fetch waits for the refresh interval");
    }
}
