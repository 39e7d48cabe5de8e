//! The client side of SASL PLAIN and SCRAM-SHA-256/512 (RFC 5802), as Kafka's clients run it after
//! ApiVersions: SaslHandshake v1 names the mechanism, SaslAuthenticate carries each message. The server's
//! final signature is checked, so a broker that does not know the password cannot pretend it does.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

use crate::error::{ClientError, Result};
use crate::security::SaslCredentials;

fn auth_err(what: impl Into<String>) -> ClientError {
    ClientError::Authentication(what.into())
}

/// One mechanism's exchange: `first()` is the client's opening message, `next()` answers each server
/// message until it returns `None` (done).
pub enum ClientExchange {
    Plain(Vec<u8>),
    Scram(Scram),
}

impl ClientExchange {
    pub fn new(creds: &SaslCredentials) -> Result<Self> {
        match creds.mechanism.as_str() {
            "PLAIN" => {
                let mut msg = Vec::new();
                msg.push(0);
                msg.extend_from_slice(creds.username.as_bytes());
                msg.push(0);
                msg.extend_from_slice(creds.password.as_bytes());
                Ok(ClientExchange::Plain(msg))
            }
            "SCRAM-SHA-256" => Ok(ClientExchange::Scram(Scram::new(creds, false))),
            "SCRAM-SHA-512" => Ok(ClientExchange::Scram(Scram::new(creds, true))),
            other => Err(auth_err(format!("unsupported SASL mechanism {other}"))),
        }
    }

    pub fn first(&self) -> Vec<u8> {
        match self {
            ClientExchange::Plain(msg) => msg.clone(),
            ClientExchange::Scram(s) => format!("n,,{}", s.client_first_bare).into_bytes(),
        }
    }

    /// The answer to a server message, or `None` once the exchange is complete.
    pub fn next(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>> {
        match self {
            ClientExchange::Plain(_) => Ok(None),
            ClientExchange::Scram(s) => s.next(server),
        }
    }
}

pub struct Scram {
    sha512: bool,
    password: String,
    nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

fn escape(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn attr(msg: &str, key: char) -> Option<&str> {
    msg.split(',').find_map(|p| {
        let mut chars = p.chars();
        (chars.next() == Some(key) && chars.next() == Some('=')).then(|| &p[2..])
    })
}

impl Scram {
    fn new(creds: &SaslCredentials, sha512: bool) -> Self {
        let mut bytes = [0u8; 24];
        rand::fill(&mut bytes);
        let nonce = B64.encode(bytes).replace(['+', '/', '='], "x");
        let client_first_bare = format!("n={},r={nonce}", escape(&creds.username));
        Scram {
            sha512,
            password: creds.password.clone(),
            nonce,
            client_first_bare,
            expected_server_signature: None,
        }
    }

    fn hmac(&self, key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
        let bad = |_| auth_err("bad HMAC key");
        Ok(if self.sha512 {
            let mut m = Hmac::<Sha512>::new_from_slice(key).map_err(bad)?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        } else {
            let mut m = Hmac::<Sha256>::new_from_slice(key).map_err(bad)?;
            m.update(data);
            m.finalize().into_bytes().to_vec()
        })
    }

    fn hash(&self, data: &[u8]) -> Vec<u8> {
        if self.sha512 {
            Sha512::digest(data).to_vec()
        } else {
            Sha256::digest(data).to_vec()
        }
    }

    fn salted_password(&self, salt: &[u8], iterations: u32) -> Vec<u8> {
        if self.sha512 {
            let mut out = [0u8; 64];
            pbkdf2::pbkdf2_hmac::<Sha512>(self.password.as_bytes(), salt, iterations, &mut out);
            out.to_vec()
        } else {
            let mut out = [0u8; 32];
            pbkdf2::pbkdf2_hmac::<Sha256>(self.password.as_bytes(), salt, iterations, &mut out);
            out.to_vec()
        }
    }

    fn next(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>> {
        let msg = std::str::from_utf8(server)
            .map_err(|_| auth_err("server SCRAM message is not UTF-8"))?;
        if let Some(expected) = &self.expected_server_signature {
            if let Some(e) = attr(msg, 'e') {
                return Err(auth_err(format!("server refused: {e}")));
            }
            let v = attr(msg, 'v').ok_or_else(|| auth_err("server-final without a signature"))?;
            let got = B64
                .decode(v)
                .map_err(|_| auth_err("bad server signature"))?;
            if got != *expected {
                return Err(auth_err(
                    "the server's SCRAM signature is wrong: it does not know the credential",
                ));
            }
            return Ok(None);
        }
        let nonce = attr(msg, 'r').ok_or_else(|| auth_err("server-first without a nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            return Err(auth_err("server nonce does not extend the client's"));
        }
        let salt = attr(msg, 's')
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| auth_err("server-first without a salt"))?;
        let iterations: u32 = attr(msg, 'i')
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=1_000_000).contains(i))
            .ok_or_else(|| auth_err("server-first without sane iterations"))?;
        let salted = self.salted_password(&salt, iterations);
        let client_key = self.hmac(&salted, b"Client Key")?;
        let stored_key = self.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{msg},{without_proof}", self.client_first_bare);
        let signature = self.hmac(&stored_key, auth_message.as_bytes())?;
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = self.hmac(&salted, b"Server Key")?;
        self.expected_server_signature = Some(self.hmac(&server_key, auth_message.as_bytes())?);
        Ok(Some(
            format!("{without_proof},p={}", B64.encode(proof)).into_bytes(),
        ))
    }
}
