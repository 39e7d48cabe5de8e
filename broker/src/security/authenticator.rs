//! SASL in the connection, before any other API: SaslHandshake picks a mechanism, SaslAuthenticate (or, after
//! a v0 handshake, raw length-prefixed tokens) carries the exchange, and the outcome is the connection's
//! principal. Until then only ApiVersions is served; anything else closes the connection, as Kafka does.
//! A failed login is answered with SASL_AUTHENTICATION_FAILED and the connection closed. With
//! `connections.max.reauth.ms` the session expires (KIP-368): clients re-authenticate on the same
//! connection, and one that does not is disconnected at its next request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::sasl::{plain_authenticate, Exchange, SaslError, ScramMechanism, ScramServer};

#[derive(Debug, thiserror::Error)]
enum LoginError {
    #[error(transparent)]
    Sasl(#[from] SaslError),
    #[error("no SASL exchange in progress")]
    IllegalState,
    #[error("re-authentication must keep the connection's principal")]
    PrincipalChanged,
    #[error("Authentication failed: {0}")]
    Token(String),
}
use super::{Listener, Principal};
use crate::broker::Broker;
use crate::protocol::{encode_response, FixedHeader};
use crate::request::Reply;
use kafka_protocol::error::ResponseError;

const PRE_AUTH_MAX_FRAME: usize = 512 * 1024;

/// What the connection does with a frame after the authenticator has seen it.
pub enum Gate {
    /// A request for the dispatcher, from this principal.
    Dispatch,
    /// The authenticator answered it.
    Answered(Reply),
}

enum Mechanism {
    Plain,
    Scram(ScramServer),
    /// After a refused token: the error, given once the client acknowledges the error challenge.
    OAuth(Option<String>),
}

enum State {
    /// SASL listener, nothing negotiated yet (or a non-SASL listener: always [`State::Done`]).
    AwaitHandshake,
    /// A mechanism was chosen; `raw` after a v0 handshake (tokens without Kafka framing).
    Exchanging {
        name: String,
        mechanism: Mechanism,
        raw: bool,
    },
    Done,
}

pub struct Authenticator {
    listener: Arc<Listener>,
    state: State,
    principal: Arc<Principal>,
    authenticated_once: bool,
    expires: Option<Instant>,
    lifetime_ms: i64,
}

impl Authenticator {
    /// `principal` is what the transport established (a client certificate's, or ANONYMOUS).
    pub fn new(listener: Arc<Listener>, principal: Principal) -> Self {
        let state = if listener.protocol.uses_sasl() {
            State::AwaitHandshake
        } else {
            State::Done
        };
        Authenticator {
            listener,
            state,
            principal: Arc::new(principal),
            authenticated_once: false,
            expires: None,
            lifetime_ms: 0,
        }
    }

    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// Before a login completes, frames are held to Kafka's `sasl.server.max.receive.size` default, so an
    /// unauthenticated peer cannot make the broker buffer 100 MiB.
    pub fn frame_limit(&self, max: usize) -> usize {
        match self.state {
            State::Done => max,
            _ => max.min(PRE_AUTH_MAX_FRAME),
        }
    }

    pub fn listener(&self) -> &Arc<Listener> {
        &self.listener
    }

    pub fn on_frame(&mut self, broker: &Broker, frame: &Bytes) -> Gate {
        if let State::Exchanging { raw: true, .. } = self.state {
            return Gate::Answered(self.raw_token(broker, frame));
        }
        let Some(fixed) = FixedHeader::peek(frame) else {
            return Gate::Dispatch;
        };
        match ApiKey::try_from(fixed.api_key) {
            Ok(ApiKey::SaslHandshake) => Gate::Answered(self.handshake(frame, fixed)),
            Ok(ApiKey::SaslAuthenticate) => Gate::Answered(self.authenticate(broker, frame, fixed)),
            Ok(ApiKey::ApiVersions) => Gate::Dispatch,
            Ok(api) => match &self.state {
                State::Done if self.expires.is_some_and(|e| Instant::now() >= e) => {
                    Gate::Answered(Reply::Close(format!(
                        "SASL session of {} expired (connections.max.reauth.ms) without re-authentication",
                        self.principal
                    )))
                }
                State::Done => Gate::Dispatch,
                _ => Gate::Answered(Reply::Close(format!(
                    "unexpected {api:?} request during SASL authentication on listener {}",
                    self.listener.name
                ))),
            },
            Err(_) => Gate::Dispatch,
        }
    }

    fn handshake(&mut self, frame: &Bytes, fixed: FixedHeader) -> Reply {
        let version = fixed.api_version;
        let Some(req) = decode::<SaslHandshakeRequest>(frame, ApiKey::SaslHandshake, version)
        else {
            return Reply::Close("cannot decode SaslHandshake".into());
        };
        let mechanisms: Vec<_> = self
            .listener
            .mechanisms
            .iter()
            .map(|m| crate::handlers::str_bytes(m))
            .collect();
        let respond = |code: i16| {
            respond(
                ApiKey::SaslHandshake,
                version,
                fixed.correlation_id,
                &SaslHandshakeResponse::default()
                    .with_error_code(code)
                    .with_mechanisms(mechanisms.clone()),
            )
        };
        let reauthenticating = matches!(self.state, State::Done) && self.authenticated_once;
        let expected =
            matches!(self.state, State::AwaitHandshake) || (reauthenticating && version >= 1);
        if !self.listener.protocol.uses_sasl() || !expected {
            return respond(ResponseError::IllegalSaslState.code());
        }
        let name = req.mechanism.to_ascii_uppercase();
        let mechanism = match name.as_str() {
            "PLAIN" => Mechanism::Plain,
            "OAUTHBEARER" => Mechanism::OAuth(None),
            other => match ScramMechanism::from_name(other) {
                Some(m) => Mechanism::Scram(ScramServer::new(m, super::sasl::process_secret())),
                None => {
                    return close_after(
                        respond(ResponseError::UnsupportedSaslMechanism.code()),
                        "unsupported SASL mechanism",
                    )
                }
            },
        };
        if !self.listener.mechanisms.contains(&name) {
            return close_after(
                respond(ResponseError::UnsupportedSaslMechanism.code()),
                "SASL mechanism not enabled on this listener",
            );
        }
        self.state = State::Exchanging {
            name,
            mechanism,
            raw: version == 0,
        };
        respond(0)
    }

    fn authenticate(&mut self, broker: &Broker, frame: &Bytes, fixed: FixedHeader) -> Reply {
        let version = fixed.api_version;
        let Some(req) = decode::<SaslAuthenticateRequest>(frame, ApiKey::SaslAuthenticate, version)
        else {
            return Reply::Close("cannot decode SaslAuthenticate".into());
        };
        let answer = |code: i16, message: Option<String>, bytes: Vec<u8>, lifetime: i64| {
            respond(
                ApiKey::SaslAuthenticate,
                version,
                fixed.correlation_id,
                &SaslAuthenticateResponse::default()
                    .with_error_code(code)
                    .with_error_message(message.map(|m| crate::handlers::str_bytes(&m)))
                    .with_auth_bytes(Bytes::from(bytes))
                    .with_session_lifetime_ms(lifetime),
            )
        };
        if !matches!(self.state, State::Exchanging { raw: false, .. }) {
            return close_after(
                answer(
                    ResponseError::IllegalSaslState.code(),
                    Some("SaslAuthenticate before SaslHandshake".into()),
                    Vec::new(),
                    0,
                ),
                "SaslAuthenticate out of order",
            );
        }
        match self.step(broker, &req.auth_bytes) {
            Ok(Step::Continue(bytes)) => answer(0, None, bytes, 0),
            Ok(Step::Done(bytes)) => {
                let lifetime = self.session_lifetime_ms();
                answer(0, None, bytes, lifetime)
            }
            Err(e) => close_after(
                answer(
                    ResponseError::SaslAuthenticationFailed.code(),
                    Some(e.to_string()),
                    Vec::new(),
                    0,
                ),
                "SASL authentication failed",
            ),
        }
    }

    /// After a v0 handshake the client sends bare tokens; replies are bare tokens too, and a failure
    /// simply closes the connection (there is no field to put an error in).
    fn raw_token(&mut self, broker: &Broker, frame: &Bytes) -> Reply {
        match self.step(broker, frame) {
            Ok(Step::Continue(bytes) | Step::Done(bytes)) => Reply::Frame(raw_frame(&bytes)),
            Err(e) => Reply::Close(format!("SASL authentication failed: {e}")),
        }
    }

    fn step(&mut self, broker: &Broker, token: &[u8]) -> Result<Step, LoginError> {
        let State::Exchanging {
            name, mechanism, ..
        } = &mut self.state
        else {
            return Err(LoginError::IllegalState);
        };
        let name = name.clone();
        let mut token_expiry_ms = None;
        let outcome = match mechanism {
            Mechanism::OAuth(Some(refused)) => Err(LoginError::Token(refused.clone())),
            Mechanism::OAuth(failed @ None) => {
                let validated = super::oauth::bearer_token(token).and_then(|t| {
                    self.listener
                        .oauth
                        .as_ref()
                        .ok_or(super::oauth::TokenError::Malformed)?
                        .validate(&t)
                });
                match validated {
                    Ok(v) => {
                        token_expiry_ms = Some(v.expires_ms);
                        Ok((Vec::new(), Some(v.principal)))
                    }
                    // RFC 7628: an error challenge first; the client answers it, then the login fails.
                    Err(e) => {
                        *failed = Some(e.to_string());
                        return Ok(Step::Continue(br#"{"status":"invalid_token"}"#.to_vec()));
                    }
                }
            }
            Mechanism::Plain => plain_authenticate(token, &|user| broker.credentials.all_for(user))
                .map(|user| (Vec::new(), Some(user)))
                .map_err(LoginError::from),
            Mechanism::Scram(server) => {
                let Some(mech) = ScramMechanism::from_name(&name) else {
                    return Err(LoginError::IllegalState);
                };
                server
                    .step(token, &|user| broker.credentials.get(user, mech))
                    .map(|exchange| match exchange {
                        Exchange::Continue(bytes) => (bytes, None),
                        Exchange::Done {
                            response,
                            authorization_id,
                            ..
                        } => (response, Some(authorization_id)),
                    })
                    .map_err(LoginError::from)
            }
        };
        let (bytes, user) = match outcome {
            Ok(o) => o,
            Err(e) => {
                broker
                    .metrics
                    .authentication(&self.listener.name, &name, false);
                tracing::info!(listener = %self.listener.name, mechanism = %name, reason = %e, "SASL authentication failed");
                return Err(e);
            }
        };
        let Some(user) = user else {
            return Ok(Step::Continue(bytes));
        };
        let principal = Principal::user(user);
        if self.authenticated_once && principal != *self.principal {
            broker
                .metrics
                .authentication(&self.listener.name, &name, false);
            return Err(LoginError::PrincipalChanged);
        }
        broker
            .metrics
            .authentication(&self.listener.name, &name, true);
        tracing::debug!(listener = %self.listener.name, mechanism = %name, %principal, "SASL authentication succeeded");
        self.principal = Arc::new(principal);
        self.authenticated_once = true;
        self.state = State::Done;
        // The session lasts connections.max.reauth.ms, and never past the token's expiry (KIP-368).
        let reauth = (self.listener.reauth_ms > 0).then_some(self.listener.reauth_ms);
        let token = token_expiry_ms.map(|exp| (exp - now_ms()).max(0));
        self.lifetime_ms = match (reauth, token) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(0),
        };
        self.expires = (reauth.is_some() || token.is_some())
            .then(|| Instant::now() + Duration::from_millis(self.lifetime_ms as u64));
        Ok(Step::Done(bytes))
    }

    fn session_lifetime_ms(&self) -> i64 {
        self.lifetime_ms
    }
}

enum Step {
    Continue(Vec<u8>),
    Done(Vec<u8>),
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn decode<T: Decodable>(frame: &Bytes, api: ApiKey, version: i16) -> Option<T> {
    let mut body = frame.clone();
    RequestHeader::decode(&mut body, api.request_header_version(version)).ok()?;
    T::decode(&mut body, version).ok()
}

fn respond<R: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &R) -> Reply {
    match encode_response(api, version, correlation_id, body) {
        Ok(frame) => Reply::Frame(frame),
        Err(e) => Reply::Close(e.to_string()),
    }
}

/// The response goes out, then the connection closes (Kafka's behaviour after a refused login).
fn close_after(reply: Reply, reason: &str) -> Reply {
    match reply {
        Reply::Frame(frame) => Reply::FrameThenClose(frame, reason.to_string()),
        other => other,
    }
}

fn raw_frame(token: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(4 + token.len());
    buf.put_i32(token.len() as i32);
    buf.put_slice(token);
    buf.freeze()
}
