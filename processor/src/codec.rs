//! How record keys and values become typed values and back: raw bytes, UTF-8 text or JSON (serde).

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::CodecError;

pub trait Codec<T>: Send + Sync + 'static {
    /// Reads a key or value; `None` is Kafka's null.
    fn decode(&self, bytes: Option<&[u8]>) -> Result<T, CodecError>;
    fn encode(&self, value: &T) -> Result<Option<Bytes>, CodecError>;
}

/// The bytes as they are (null reads as empty).
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

/// UTF-8 text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

/// JSON through serde.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec<Bytes> for Raw {
    fn decode(&self, bytes: Option<&[u8]>) -> Result<Bytes, CodecError> {
        Ok(bytes.map(Bytes::copy_from_slice).unwrap_or_default())
    }
    fn encode(&self, value: &Bytes) -> Result<Option<Bytes>, CodecError> {
        Ok(Some(value.clone()))
    }
}

/// Raw bytes that keep Kafka's null apart from empty (keys, mostly).
impl Codec<Option<Bytes>> for Raw {
    fn decode(&self, bytes: Option<&[u8]>) -> Result<Option<Bytes>, CodecError> {
        Ok(bytes.map(Bytes::copy_from_slice))
    }
    fn encode(&self, value: &Option<Bytes>) -> Result<Option<Bytes>, CodecError> {
        Ok(value.clone())
    }
}

impl Codec<String> for Utf8 {
    fn decode(&self, bytes: Option<&[u8]>) -> Result<String, CodecError> {
        let b = bytes.ok_or(CodecError::Null("UTF-8 text"))?;
        std::str::from_utf8(b)
            .map(str::to_string)
            .map_err(CodecError::NotUtf8)
    }
    fn encode(&self, value: &String) -> Result<Option<Bytes>, CodecError> {
        Ok(Some(Bytes::copy_from_slice(value.as_bytes())))
    }
}

impl<T: Serialize + DeserializeOwned + 'static> Codec<T> for Json {
    fn decode(&self, bytes: Option<&[u8]>) -> Result<T, CodecError> {
        let b = bytes.ok_or(CodecError::Null("JSON"))?;
        serde_json::from_slice(b).map_err(CodecError::InvalidJson)
    }
    fn encode(&self, value: &T) -> Result<Option<Bytes>, CodecError> {
        serde_json::to_vec(value)
            .map(|v| Some(Bytes::from(v)))
            .map_err(CodecError::WriteJson)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_and_json_refuse_what_they_cannot_read() {
        assert_eq!(Utf8.decode(Some(b"hi")).ok(), Some("hi".to_string()));
        assert!(Utf8.decode(Some(&[0xff, 0xfe])).is_err());
        assert!(Utf8.decode(None).is_err());
        let v: Result<Vec<u32>, _> = Json.decode(Some(b"[1,2]"));
        assert_eq!(v.ok(), Some(vec![1, 2]));
        let bad: Result<Vec<u32>, _> = Json.decode(Some(b"{"));
        let bad = bad.expect_err("not JSON");
        assert!(matches!(bad, CodecError::InvalidJson(_)));
        assert!(bad.to_string().starts_with("invalid JSON"));
        assert_eq!(
            Utf8.decode(None).err().map(|e| e.to_string()).as_deref(),
            Some("null where UTF-8 text was expected")
        );
        let raw: Result<Bytes, _> = Raw.decode(None);
        assert_eq!(raw.ok(), Some(Bytes::new()));
    }
}
