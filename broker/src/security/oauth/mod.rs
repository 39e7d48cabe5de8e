//! OAUTHBEARER (RFC 7628) with JWT validation as Kafka's OAuthBearerValidatorCallbackHandler does it
//! (KIP-768): the token's signature against the JWKS, `exp` required and `nbf` / `iat` respected within
//! `sasl.oauthbearer.clock.skew.seconds`, `sasl.oauthbearer.expected.audience` / `.expected.issuer` when set,
//! the principal from `sasl.oauthbearer.sub.claim.name`. The session ends when the token does.

pub mod jwks;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde_json::Value;

use jwks::KeyCache;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("malformed OAUTHBEARER message")]
    Malformed,
    #[error("the token is not a signed JWT")]
    NotJwt,
    #[error("the token's key (kid '{0}') is not in the JWKS")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token has no '{0}' claim")]
    MissingClaim(String),
    #[error("the token's audience is not one of sasl.oauthbearer.expected.audience")]
    Audience,
    #[error("the token's issuer is not sasl.oauthbearer.expected.issuer")]
    Issuer,
}

pub struct OAuthValidator {
    pub keys: KeyCache,
    audience: Vec<String>,
    issuer: Option<String>,
    sub_claim: String,
    skew: Duration,
}

/// A valid token: who it is for and when it stops being valid (ms since the epoch).
pub struct Validated {
    pub principal: String,
    pub expires_ms: i64,
}

impl OAuthValidator {
    pub fn from_config(get: &dyn Fn(&str) -> Option<String>) -> Option<Self> {
        let url = get("sasl.oauthbearer.jwks.endpoint.url").filter(|u| !u.trim().is_empty())?;
        let list = |k: &str| -> Vec<String> {
            get(k)
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let num = |k: &str, d: u64| get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
        Some(OAuthValidator {
            keys: KeyCache::new(
                url,
                Duration::from_millis(num("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)),
            ),
            audience: list("sasl.oauthbearer.expected.audience"),
            issuer: get("sasl.oauthbearer.expected.issuer").filter(|s| !s.is_empty()),
            sub_claim: get("sasl.oauthbearer.sub.claim.name").unwrap_or_else(|| "sub".into()),
            skew: Duration::from_secs(num("sasl.oauthbearer.clock.skew.seconds", 30)),
        })
    }

    pub fn validate(&self, token: &str) -> Result<Validated, TokenError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::NotJwt);
        };
        let json = |part: &str| -> Result<Value, TokenError> {
            let bytes = B64URL
                .decode(part.trim_end_matches('='))
                .map_err(|_| TokenError::NotJwt)?;
            serde_json::from_slice(&bytes).map_err(|_| TokenError::NotJwt)
        };
        let header = json(h)?;
        let claims = json(p)?;
        let sig = B64URL
            .decode(s.trim_end_matches('='))
            .map_err(|_| TokenError::NotJwt)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(TokenError::NotJwt)?;
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(key) = self.keys.key(kid) else {
            self.keys
                .wanted
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(TokenError::UnknownKey(kid.to_string()));
        };
        let signed = token.len() - s.len() - 1;
        if !key.verify(
            alg,
            token.as_bytes().get(..signed).unwrap_or_default(),
            &sig,
        ) {
            return Err(TokenError::BadSignature);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        let skew = self.skew.as_secs_f64();
        let time = |k: &str| claims.get(k).and_then(Value::as_f64);
        let exp = time("exp").ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
        if exp + skew < now {
            return Err(TokenError::Expired);
        }
        if time("nbf").is_some_and(|nbf| nbf - skew > now)
            || time("iat").is_some_and(|iat| iat - skew > now)
        {
            return Err(TokenError::NotYetValid);
        }
        if !self.audience.is_empty() {
            let aud: Vec<&str> = match claims.get("aud") {
                Some(Value::String(a)) => vec![a.as_str()],
                Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !aud.iter().any(|a| self.audience.iter().any(|e| e == a)) {
                return Err(TokenError::Audience);
            }
        }
        if let Some(issuer) = &self.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(TokenError::Issuer);
            }
        }
        let principal = claims
            .get(&self.sub_claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| TokenError::MissingClaim(self.sub_claim.clone()))?;
        Ok(Validated {
            principal: principal.to_string(),
            expires_ms: (exp * 1000.0) as i64,
        })
    }
}

/// The token out of a client's first message: `n,[a=authzid],\x01auth=Bearer TOKEN\x01[k=v\x01]*\x01`.
pub fn bearer_token(message: &[u8]) -> Result<String, TokenError> {
    let text = std::str::from_utf8(message).map_err(|_| TokenError::Malformed)?;
    let (gs2, rest) = text.split_once(',').ok_or(TokenError::Malformed)?;
    if gs2 != "n" && gs2 != "y" {
        return Err(TokenError::Malformed);
    }
    let (_authzid, kvs) = rest.split_once(',').ok_or(TokenError::Malformed)?;
    kvs.split('\u{1}')
        .find_map(|kv| kv.strip_prefix("auth="))
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        })
        .filter(|t| !t.is_empty())
        .ok_or(TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_client_message() {
        let msg = b"n,,\x01auth=Bearer abc.def.ghi\x01ext=1\x01\x01";
        assert_eq!(bearer_token(msg).unwrap(), "abc.def.ghi");
        assert!(bearer_token(b"n,,\x01auth=Basic x\x01\x01").is_err());
        assert!(bearer_token(b"garbage").is_err());
    }
}
