//! What passes between the dispatcher and the handlers: the request's context going in, the handler's
//! decision coming out. A module of its own so that handlers and the dispatcher depend on it, not on each
//! other.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::RequestHeader;

use crate::security::acl::{Operation, ResourceType};
use crate::security::{Listener, Principal};

pub const CLUSTER_RESOURCE: &str = "kafka-cluster";

/// What a handler knows about the request beyond its body.
pub struct RequestContext {
    pub header: RequestHeader,
    pub peer: std::net::SocketAddr,
    /// The listener the request came in on: Metadata answers with its addresses.
    pub listener: Arc<Listener>,
    pub principal: Arc<Principal>,
}

impl RequestContext {
    /// Whether this request's principal, from this host, may do `op` on the resource: the one question
    /// every handler asks (always yes without an authorizer).
    pub fn allowed(
        &self,
        broker: &crate::broker::Broker,
        op: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        broker
            .acls
            .authorize(&self.principal, self.peer.ip(), op, resource_type, name)
    }

    /// [`RequestContext::allowed`] on the cluster resource (Kafka names it `kafka-cluster`).
    pub fn allowed_on_cluster(&self, broker: &crate::broker::Broker, op: Operation) -> bool {
        self.allowed(broker, op, ResourceType::Cluster, CLUSTER_RESOURCE)
    }

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
    /// A last response, then the connection closes (a refused login).
    FrameThenClose(Bytes, String),
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
