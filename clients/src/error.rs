//! The client's error type: transport failures, Kafka error codes with the request they answered, timeouts.

use kafka_protocol::error::ResponseError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot reach any bootstrap broker ({bootstrap}) within {timeout_ms} ms: {reason}")]
    Unreachable {
        bootstrap: String,
        timeout_ms: u64,
        reason: String,
    },
    #[error("connection to {addr} failed: {reason}")]
    Connection { addr: String, reason: String },
    #[error("{what} timed out after {ms} ms")]
    Timeout { what: String, ms: u64 },
    /// A Kafka error code in a response.
    #[error("{context}: {error}")]
    Kafka {
        context: String,
        error: ResponseError,
    },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("unknown topic {0}")]
    UnknownTopic(String),
    #[error("invalid argument: {0}")]
    Invalid(String),
    #[error("the producer was fenced by a newer instance with the same transactional.id")]
    Fenced,
    /// Refused login (bad credentials, no common mechanism) or a TLS handshake failure: not retried.
    #[error("authentication failed: {0}")]
    Authentication(String),
    #[error("client is closed")]
    Closed,
}

impl ClientError {
    pub fn kafka(context: impl Into<String>, code: i16) -> Self {
        ClientError::Kafka {
            context: context.into(),
            error: ResponseError::try_from_code(code).unwrap_or(ResponseError::Unknown(code)),
        }
    }

    /// The Kafka error code, if this error carries one.
    pub fn code(&self) -> Option<i16> {
        match self {
            ClientError::Kafka { error, .. } => Some(error.code()),
            _ => None,
        }
    }

    /// Whether retrying the request may succeed (transport trouble, or a retriable Kafka error).
    pub fn is_retriable(&self) -> bool {
        match self {
            // CONCURRENT_TRANSACTIONS is not retriable in the protocol's table, but every client retries it: it
            // only means the previous transaction's markers are still being written.
            ClientError::Kafka { error, .. } => {
                error.is_retriable() || *error == ResponseError::ConcurrentTransactions
            }
            ClientError::Connection { .. } | ClientError::Timeout { .. } => true,
            _ => false,
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// Turns a response error code into a result.
pub fn check(context: impl FnOnce() -> String, code: i16) -> Result<()> {
    if code == 0 {
        Ok(())
    } else {
        Err(ClientError::kafka(context(), code))
    }
}
