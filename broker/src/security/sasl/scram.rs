//! Server side of SCRAM-SHA-256 / SCRAM-SHA-512, modelled on Kafka's
//! `ScramSaslServer` + `ScramMessages`.
//!
//! Where Kafka is looser than RFC 5802 we follow the RFC, since no Kafka
//! client relies on the looseness: the nonce must match exactly (Kafka uses
//! `endsWith`), `c=` must echo the gs2 header (Kafka never checks it), `m=`
//! is refused, the authzid is compared after saslname decoding, and the auth
//! message uses the client's bytes verbatim (Kafka re-serialises them, which
//! is identical for everything its clients send). Kafka's regex also rejects
//! the `y` gs2 flag; we accept it because we never advertise `-PLUS`.

use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{
    b64_decode, b64_encode, base36_130, check_size, SaslError, ScramCredential, ScramMechanism,
};

/// Kafka's `ScramLoginModule.TOKEN_AUTH_CONFIG`, the only extension it acts on.
const TOKEN_AUTH_EXTENSION: &str = "tokenauth";

/// A delegation token's SCRAM credential (KIP-48), looked up by token id.
#[derive(Clone, Debug, PartialEq)]
pub struct DelegationTokenCredential {
    pub credential: ScramCredential,
    /// The principal the session is authorised as (Kafka's `tokenOwner`).
    pub owner: String,
    pub expiry_timestamp_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exchange {
    /// Send these bytes as auth_bytes and wait for the next client message.
    Continue(Vec<u8>),
    /// Authenticated. `response` is the server-final message and must still
    /// be sent; `authorization_id` is the user (or token owner).
    Done {
        response: Vec<u8>,
        authorization_id: String,
        token_auth: bool,
    },
}

/// What client-first established, kept until client-final arrives.
struct Pending {
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
    credential: ScramCredential,
    /// False when `credential` is the stand-in for an unknown user.
    genuine: bool,
    authorization_id: String,
    token_auth: bool,
    token_expiry_ms: Option<i64>,
}

enum State {
    ClientFirst,
    ClientFinal(Box<Pending>),
    Complete,
    Failed,
}

pub struct ScramServer {
    mech: ScramMechanism,
    secret: Arc<[u8; 32]>,
    state: State,
    token_expiry_ms: Option<i64>,
    #[cfg(test)]
    fixed_nonce: Option<String>,
}

impl ScramServer {
    /// `secret` keys the fake credentials for unknown users; share one per
    /// process so a name's fake salt is stable across connections.
    pub fn new(mech: ScramMechanism, secret: Arc<[u8; 32]>) -> Self {
        ScramServer {
            mech,
            secret,
            state: State::ClientFirst,
            token_expiry_ms: None,
            #[cfg(test)]
            fixed_nonce: None,
        }
    }

    #[cfg(test)]
    pub(crate) fn with_fixed_nonce(mut self, nonce: &str) -> Self {
        self.fixed_nonce = Some(nonce.to_owned());
        self
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mech
    }

    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Expiry of the delegation token used, once a token exchange completed
    /// (Kafka's CREDENTIAL_LIFETIME_MS negotiated property).
    pub fn token_expiry_timestamp_ms(&self) -> Option<i64> {
        self.token_expiry_ms
    }

    /// One exchange step for user credentials. A client asking for
    /// `tokenauth=true` here fails like a wrong password, as Kafka does for
    /// an unknown token; use [`Self::step_with_tokens`] to support tokens.
    pub fn step(
        &mut self,
        message: &[u8],
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
    ) -> Result<Exchange, SaslError> {
        self.step_with_tokens(message, lookup, &|_| None)
    }

    pub fn step_with_tokens(
        &mut self,
        message: &[u8],
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
        token_lookup: &dyn Fn(&str) -> Option<DelegationTokenCredential>,
    ) -> Result<Exchange, SaslError> {
        // Any error leaves the server Failed, like Kafka's catch-all.
        let state = std::mem::replace(&mut self.state, State::Failed);
        check_size(message)?;
        match state {
            State::ClientFirst => {
                let (pending, reply) = self.client_first(message, lookup, token_lookup)?;
                self.state = State::ClientFinal(Box::new(pending));
                Ok(Exchange::Continue(reply))
            }
            State::ClientFinal(pending) => {
                let done = self.client_final(message, &pending)?;
                self.token_expiry_ms = pending.token_expiry_ms;
                self.state = State::Complete;
                Ok(done)
            }
            State::Complete => Err(SaslError::IllegalState("COMPLETE")),
            State::Failed => Err(SaslError::IllegalState("FAILED")),
        }
    }

    fn invalid(&self, reason: &'static str) -> SaslError {
        SaslError::InvalidCredentials {
            mechanism: self.mech.name(),
            reason,
        }
    }

    fn client_first(
        &self,
        message: &[u8],
        lookup: &dyn Fn(&str) -> Option<ScramCredential>,
        token_lookup: &dyn Fn(&str) -> Option<DelegationTokenCredential>,
    ) -> Result<(Pending, Vec<u8>), SaslError> {
        let text =
            std::str::from_utf8(message).map_err(|_| self.invalid("client-first not UTF-8"))?;
        let first = parse_client_first(text).map_err(|reason| self.invalid(reason))?;
        // Kafka parses extensions into a map, so a repeated key's last value wins;
        // unknown extensions are ignored.
        let token_auth = first
            .extensions
            .iter()
            .rev()
            .find(|(key, _)| *key == TOKEN_AUTH_EXTENSION)
            .is_some_and(|(_, value)| value.eq_ignore_ascii_case("true"));

        let found = if token_auth {
            token_lookup(&first.username)
                .map(|t| (t.credential, t.owner, Some(t.expiry_timestamp_ms)))
        } else {
            lookup(&first.username).map(|c| (c, first.username.clone(), None))
        };
        // An unusable stored credential is treated like a missing one so the
        // client cannot tell the two apart (Kafka fails early on low counts).
        let found = found.filter(|(c, _, _)| c.mechanism == self.mech && c.is_usable());
        let (credential, authorization_id, token_expiry_ms, genuine) = match found {
            Some((credential, owner, expiry)) => (credential, owner, expiry, true),
            None => (
                self.fake_credential(&first.username, token_auth),
                first.username.clone(),
                None,
                false,
            ),
        };

        if first.authzid.as_ref().is_some_and(|a| *a != first.username) {
            return Err(SaslError::AuthorizationIdMismatch);
        }

        let nonce = format!("{}{}", first.nonce, self.server_nonce());
        let server_first = format!(
            "r={},s={},i={}",
            nonce,
            b64_encode(&credential.salt),
            credential.iterations
        );
        let reply = server_first.clone().into_bytes();
        let pending = Pending {
            gs2_header: first.gs2_header.to_owned(),
            client_first_bare: first.bare.to_owned(),
            server_first,
            nonce,
            credential,
            genuine,
            authorization_id,
            token_auth,
            token_expiry_ms,
        };
        Ok((pending, reply))
    }

    fn client_final(&self, message: &[u8], p: &Pending) -> Result<Exchange, SaslError> {
        let text =
            std::str::from_utf8(message).map_err(|_| self.invalid("client-final not UTF-8"))?;
        let fin = parse_client_final(text).map_err(|reason| self.invalid(reason))?;
        if fin.nonce != p.nonce {
            return Err(self.invalid("nonce mismatch"));
        }
        if fin.channel_binding != p.gs2_header.as_bytes() {
            return Err(self.invalid("channel binding does not match gs2 header"));
        }
        let auth_message = format!(
            "{},{},{}",
            p.client_first_bare, p.server_first, fin.without_proof
        );
        let client_signature = self
            .mech
            .hmac(&p.credential.stored_key, &[auth_message.as_bytes()]);
        // A wrong-length proof is just a wrong proof; Kafka would throw from xor().
        if fin.proof.len() != client_signature.len() {
            return Err(self.invalid("invalid client proof"));
        }
        let client_key: Vec<u8> = fin
            .proof
            .iter()
            .zip(client_signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let computed = self.mech.hash(&client_key);
        let matches =
            computed.ct_eq(&p.credential.stored_key) & subtle::Choice::from(u8::from(p.genuine));
        if !bool::from(matches) {
            return Err(self.invalid("invalid client proof"));
        }
        let server_signature = self
            .mech
            .hmac(&p.credential.server_key, &[auth_message.as_bytes()]);
        Ok(Exchange::Done {
            response: format!("v={}", b64_encode(&server_signature)).into_bytes(),
            authorization_id: p.authorization_id.clone(),
            token_auth: p.token_auth,
        })
    }

    /// Stand-in credential for a name with no usable credential. Keyed on the
    /// process secret so the salt is stable per name (a changing salt would
    /// reveal the user is fake) yet unpredictable without the secret. The
    /// salt has the shape of a Kafka-generated salt.
    fn fake_credential(&self, name: &str, token_auth: bool) -> ScramCredential {
        let namespace: &[u8] = if token_auth { b"token" } else { b"user" };
        let seed = ScramMechanism::Sha256.hmac(
            &self.secret[..],
            &[
                b"runnel-scram-fake-credential\0",
                self.mech.name().as_bytes(),
                b"\0",
                namespace,
                b"\0",
                name.as_bytes(),
            ],
        );
        let mut bits = [0u8; 17];
        for (dst, src) in bits.iter_mut().zip(seed.iter()) {
            *dst = *src;
        }
        ScramCredential {
            mechanism: self.mech,
            salt: base36_130(bits).into_bytes(),
            stored_key: self.mech.hmac(&seed, &[b"stored"]),
            server_key: self.mech.hmac(&seed, &[b"server"]),
            iterations: self.mech.min_iterations(),
        }
    }

    fn server_nonce(&self) -> String {
        #[cfg(test)]
        if let Some(nonce) = &self.fixed_nonce {
            return nonce.clone();
        }
        super::secure_random_string()
    }
}

pub(crate) struct ClientFirst<'a> {
    pub gs2_header: &'a str,
    pub authzid: Option<String>,
    pub username: String,
    pub nonce: &'a str,
    pub bare: &'a str,
    pub extensions: Vec<(&'a str, &'a str)>,
}

/// `gs2-header [reserved-mext ","] username "," nonce ["," extensions]`.
pub(crate) fn parse_client_first(msg: &str) -> Result<ClientFirst<'_>, &'static str> {
    let (flag, rest) = msg.split_once(',').ok_or("missing gs2 header")?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err("channel binding is not supported"),
        _ => return Err("invalid gs2 channel binding flag"),
    }
    let (authz, bare) = rest.split_once(',').ok_or("missing gs2 header")?;
    let authzid = match authz {
        "" => None,
        a => {
            let raw = a.strip_prefix("a=").ok_or("invalid gs2 authzid")?;
            Some(decode_saslname(raw).ok_or("invalid authzid")?)
        }
    };
    let gs2_header = msg
        .get(..flag.len() + authz.len() + 2)
        .ok_or("invalid gs2 header")?;
    // RFC 5802 §5.1: a mandatory extension we do not know MUST fail.
    if bare.starts_with("m=") {
        return Err("unsupported mandatory extension");
    }
    let mut attrs = bare.split(',');
    let raw_user = attrs
        .next()
        .and_then(|a| a.strip_prefix("n="))
        .ok_or("missing username")?;
    let username = decode_saslname(raw_user).ok_or("invalid username")?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("missing nonce")?;
    if !is_printable(nonce) {
        return Err("invalid nonce");
    }
    let extensions = attrs
        .map(parse_extension)
        .collect::<Option<Vec<_>>>()
        .ok_or("invalid extension")?;
    Ok(ClientFirst {
        gs2_header,
        authzid,
        username,
        nonce,
        bare,
        extensions,
    })
}

pub(crate) struct ClientFinal<'a> {
    pub channel_binding: Vec<u8>,
    pub nonce: &'a str,
    pub without_proof: &'a str,
    pub proof: Vec<u8>,
}

/// `channel-binding "," nonce ["," extensions] "," proof`.
pub(crate) fn parse_client_final(msg: &str) -> Result<ClientFinal<'_>, &'static str> {
    let (without_proof, proof_attr) = msg.rsplit_once(',').ok_or("missing proof")?;
    let proof = proof_attr
        .strip_prefix("p=")
        .and_then(b64_decode)
        .ok_or("invalid proof")?;
    let mut attrs = without_proof.split(',');
    let channel_binding = attrs
        .next()
        .and_then(|a| a.strip_prefix("c="))
        .and_then(b64_decode)
        .ok_or("invalid channel binding")?;
    let nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .ok_or("missing nonce")?;
    if attrs.any(|a| parse_extension(a).is_none()) {
        return Err("invalid extension");
    }
    Ok(ClientFinal {
        channel_binding,
        nonce,
        without_proof,
        proof,
    })
}

/// RFC 5802 saslname: "," and "=" travel as "=2C" and "=3D"; any other "=" is
/// malformed (Kafka's `ScramFormatter.username`). Kafka's regex also limits
/// names to ASCII; we accept the RFC's UTF-8.
pub(crate) fn decode_saslname(raw: &str) -> Option<String> {
    if raw.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '=' => match (chars.next(), chars.next()) {
                (Some('2'), Some('C')) => out.push(','),
                (Some('3'), Some('D')) => out.push('='),
                _ => return None,
            },
            ',' | '\0' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Inverse of [`decode_saslname`], for clients and tools building messages.
pub fn encode_saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// Kafka's PRINTABLE: `[\x21-\x7E]` except ",".
fn is_printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// Kafka's `ALPHA=VALUE`: letters, then `[\x01-\x7F]` except ",".
fn parse_extension(attr: &str) -> Option<(&str, &str)> {
    let (key, value) = attr.split_once('=')?;
    let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic());
    let value_ok = !value.is_empty() && value.bytes().all(|b| (0x01..=0x7f).contains(&b));
    (key_ok && value_ok).then_some((key, value))
}
