//! What passes between the dispatcher and the handlers: the request's context going in, the handler's
//! decision coming out. A module of its own so that handlers and the dispatcher depend on it, not on each
//! other.

use bytes::Bytes;
use kafka_protocol::messages::RequestHeader;

/// What a handler knows about the request beyond its body.
pub struct RequestContext {
    pub header: RequestHeader,
    pub peer: std::net::SocketAddr,
}

impl RequestContext {
    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_deref()
            .unwrap_or_default()
            .to_string()
    }
}

pub enum Reply {
    Frame(Bytes),
    /// acks=0 produce: the client expects nothing back.
    Nothing,
    Close(String),
}

/// What a handler decided: a response, silence (acks=0), or closing the connection.
pub enum Outcome<R> {
    Respond(R),
    Silent,
    Close(String),
}

impl<R> From<Option<R>> for Outcome<R> {
    fn from(r: Option<R>) -> Self {
        r.map_or(Outcome::Silent, Outcome::Respond)
    }
}
