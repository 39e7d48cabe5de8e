//! Broker-side SASL mechanisms: SCRAM-SHA-256/512 (RFC 5802, RFC 7677) and
//! PLAIN (RFC 4616), both verified against stored SCRAM credentials so that
//! no plaintext password is ever kept.
//!
//! Behaviour follows Apache Kafka's `ScramSaslServer` / `PlainSaslServer`;
//! deliberate deviations are noted where they are made.

pub mod plain;
pub mod scram;

#[cfg(test)]
mod tests;

pub use plain::plain_authenticate;
pub use scram::{DelegationTokenCredential, Exchange, ScramServer};

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Largest SASL message accepted from a client. Real SCRAM/PLAIN messages are
/// a few hundred bytes; the cap keeps parsing and hashing cost bounded.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Kafka's `ScramMechanism.maxIterations()` / `ScramControlManager.MAX_ITERATIONS`.
/// Enforced here on stored credentials too, because PLAIN runs PBKDF2 on the
/// broker and an unbounded count would be a CPU-exhaustion vector.
pub const MAX_ITERATIONS: u32 = 16384;

/// Kafka's `ScramMechanism.minIterations()` (same for both mechanisms).
pub const MIN_ITERATIONS: u32 = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScramMechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    Sha256,
    #[serde(rename = "SCRAM-SHA-512")]
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The `mechanism` byte of the AlterUserScramCredentials /
    /// DescribeUserScramCredentials APIs (0 is Kafka's UNKNOWN).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.code() == code)
    }

    pub fn min_iterations(self) -> u32 {
        MIN_ITERATIONS
    }

    pub fn max_iterations(self) -> u32 {
        MAX_ITERATIONS
    }

    /// Hash (and therefore key and proof) length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    pub(crate) fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub(crate) fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => hmac_parts::<Hmac<Sha256>>(key, parts),
            ScramMechanism::Sha512 => hmac_parts::<Hmac<Sha512>>(key, parts),
        }
    }

    /// RFC 5802 `Hi()`, which is PBKDF2 with HMAC as the PRF and one block.
    /// Kafka applies no SASLprep, so neither do we: the password is used as given.
    pub(crate) fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.output_len()];
        let ok = match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, iterations, &mut out).is_ok()
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2::<Hmac<Sha512>>(password, salt, iterations, &mut out).is_ok()
            }
        };
        // HMAC takes keys of any length, so this cannot fail; an empty result
        // would simply never match a stored key.
        if ok {
            out
        } else {
            Vec::new()
        }
    }
}

fn hmac_parts<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match <M as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        // Unreachable for HMAC (any key length is valid); an empty tag fails
        // every comparison rather than panicking.
        Err(_) => Vec::new(),
    }
}

/// Checks an iteration count the way Kafka's controller does for
/// AlterUserScramCredentials (error text is Kafka's UNACCEPTABLE_CREDENTIAL message).
pub fn validate_iterations(mech: ScramMechanism, iterations: u32) -> Result<(), &'static str> {
    if iterations < mech.min_iterations() {
        Err("Too few iterations")
    } else if iterations > mech.max_iterations() {
        Err("Too many iterations")
    } else {
        Ok(())
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq, Debug)]
pub struct ScramCredential {
    pub mechanism: ScramMechanism,
    #[serde(with = "b64_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "b64_bytes")]
    pub stored_key: Vec<u8>,
    #[serde(with = "b64_bytes")]
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl ScramCredential {
    /// Random salt in Kafka's format (see [`secure_random_string`]), so
    /// credentials made here look like ones made by Kafka's tools.
    pub fn from_password(mech: ScramMechanism, password: &[u8], iterations: u32) -> Self {
        Self::from_password_with_salt(
            mech,
            password,
            secure_random_string().into_bytes(),
            iterations,
        )
    }

    pub fn from_password_with_salt(
        mech: ScramMechanism,
        password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> Self {
        let salted = mech.salted_password(password, &salt, iterations);
        Self::from_salted_password(mech, &salted, salt, iterations)
    }

    /// KIP-554: AlterUserScramCredentials carries the salted password, never the password.
    pub fn from_salted_password(
        mech: ScramMechanism,
        salted_password: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> Self {
        let client_key = mech.hmac(salted_password, &[b"Client Key"]);
        ScramCredential {
            mechanism: mech,
            salt,
            stored_key: mech.hash(&client_key),
            server_key: mech.hmac(salted_password, &[b"Server Key"]),
            iterations,
        }
    }

    /// Whether the credential can be offered to a client: Kafka refuses
    /// counts below the minimum, and the maximum bounds broker-side PBKDF2.
    pub fn is_usable(&self) -> bool {
        validate_iterations(self.mechanism, self.iterations).is_ok()
            && self.stored_key.len() == self.mechanism.output_len()
    }

    /// Constant-time check of `password`; false for unusable credentials
    /// without running PBKDF2 on an attacker-influenced iteration count.
    pub fn verify_password(&self, password: &[u8]) -> bool {
        if !self.is_usable() {
            return false;
        }
        let salted = self
            .mechanism
            .salted_password(password, &self.salt, self.iterations);
        let client_key = self.mechanism.hmac(&salted, &[b"Client Key"]);
        let stored_key = self.mechanism.hash(&client_key);
        bool::from(stored_key.ct_eq(&self.stored_key))
    }
}

/// Fresh per-process secret for [`ScramServer::new`].
/// The secret fake credentials for unknown users derive from: one per broker process, so an unknown name
/// gets the same fake salt on every attempt (a changing salt would tell the name is unknown).
pub fn process_secret() -> Arc<[u8; 32]> {
    static SECRET: std::sync::OnceLock<Arc<[u8; 32]>> = std::sync::OnceLock::new();
    Arc::clone(SECRET.get_or_init(new_process_secret))
}

pub fn new_process_secret() -> Arc<[u8; 32]> {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    Arc::new(secret)
}

/// Kafka's `ScramFormatter.secureRandomString()`: a 130-bit random number in
/// base 36. Used for server nonces and salts so ours are indistinguishable
/// from Kafka's (which matters for the fake-credential salts).
pub fn secure_random_string() -> String {
    let mut bits = [0u8; 17];
    rand::fill(&mut bits);
    base36_130(bits)
}

/// Renders the low 130 bits of a big-endian 136-bit number in base 36 with
/// no leading zeros, as Java's `BigInteger.toString(36)` does.
pub(crate) fn base36_130(mut n: [u8; 17]) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if let Some(top) = n.first_mut() {
        *top &= 0x03;
    }
    let mut out = Vec::new();
    while n.iter().any(|&b| b != 0) {
        let mut rem: u16 = 0;
        for byte in n.iter_mut() {
            let cur = (rem << 8) | u16::from(*byte);
            // cur < 36 * 256, so the quotient fits a byte.
            *byte = u8::try_from(cur / 36).unwrap_or(0);
            rem = cur % 36;
        }
        out.push(DIGITS.get(usize::from(rem)).copied().unwrap_or(b'0'));
    }
    if out.is_empty() {
        out.push(b'0');
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

pub(crate) fn b64_encode(data: &[u8]) -> String {
    B64.encode(data)
}

pub(crate) fn b64_decode(data: &str) -> Option<Vec<u8>> {
    B64.decode(data).ok()
}

mod b64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::b64_encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::b64_decode(&text).ok_or_else(|| serde::de::Error::custom("invalid base64"))
    }
}

/// Errors whose `Display` is what the broker should put in
/// SaslAuthenticateResponse.error_message. None carries a password, and the
/// SCRAM failures collapse into Kafka's generic message so that nothing about
/// the user's existence leaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// Kafka sends this fixed text for every `SaslException`
    /// (SaslServerAuthenticator). `reason` is for broker logs only.
    #[error(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}"
    )]
    InvalidCredentials {
        mechanism: &'static str,
        reason: &'static str,
    },
    #[error(
        "Authentication failed: Client requested an authorization id that is different from username"
    )]
    AuthorizationIdMismatch,
    #[error("Authentication failed: Invalid username or password")]
    InvalidUsernameOrPassword,
    #[error("Authentication failed: username not specified")]
    UsernameNotSpecified,
    #[error("Authentication failed: password not specified")]
    PasswordNotSpecified,
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    InvalidPlainTokens(usize),
    #[error(
        "Authentication failed: SASL message of {size} bytes exceeds the limit of {limit} bytes"
    )]
    MessageTooLarge { size: usize, limit: usize },
    #[error("Unexpected challenge in Sasl server state {0}")]
    IllegalState(&'static str),
}

impl SaslError {
    /// Server-side detail for logging; never send this to the client.
    pub fn log_reason(&self) -> &'static str {
        match self {
            SaslError::InvalidCredentials { reason, .. } => reason,
            SaslError::AuthorizationIdMismatch => "authorization id differs from username",
            SaslError::InvalidUsernameOrPassword => "invalid username or password",
            SaslError::UsernameNotSpecified => "empty username",
            SaslError::PasswordNotSpecified => "empty password",
            SaslError::InvalidPlainTokens(_) => "malformed PLAIN message",
            SaslError::MessageTooLarge { .. } => "message too large",
            SaslError::IllegalState(_) => "message after exchange ended",
        }
    }
}

pub(crate) fn check_size(message: &[u8]) -> Result<(), SaslError> {
    if message.len() > MAX_MESSAGE_BYTES {
        Err(SaslError::MessageTooLarge {
            size: message.len(),
            limit: MAX_MESSAGE_BYTES,
        })
    } else {
        Ok(())
    }
}
