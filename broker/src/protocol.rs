//! Frame-level helpers: reading the fixed part of a request header safely and encoding responses with the
//! header version their API and version call for.

#![deny(clippy::indexing_slicing)]

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;

/// The first 8 bytes of every request header: api key, api version, correlation id.
#[derive(Debug, Clone, Copy)]
pub struct FixedHeader {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl FixedHeader {
    /// None when the frame is too short to hold even these fields.
    pub fn peek(frame: &[u8]) -> Option<Self> {
        let (key, rest) = frame.split_first_chunk::<2>()?;
        let (version, rest) = rest.split_first_chunk::<2>()?;
        let (corr, _) = rest.split_first_chunk::<4>()?;
        Some(FixedHeader {
            api_key: i16::from_be_bytes(*key),
            api_version: i16::from_be_bytes(*version),
            correlation_id: i32::from_be_bytes(*corr),
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot encode {api:?} v{version} response: {reason}")]
pub struct EncodeError {
    pub api: ApiKey,
    pub version: i16,
    pub reason: String,
}

/// Encodes a size-prefixed response frame.
pub fn encode_response<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, EncodeError> {
    let err = |e: anyhow::Error| EncodeError {
        api,
        version,
        reason: e.to_string(),
    };
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version).map_err(err)?
        + body.compute_size(version).map_err(err)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version).map_err(err)?;
    body.encode(&mut buf, version).map_err(err)?;
    Ok(buf.freeze())
}
