//! Kafka error codes as a type. On the wire a code is an i16 and 0 means success; handlers name codes
//! through this type (built from kafka-protocol's `ResponseError`, or from a storage error as a real broker
//! would map it) and turn them into the wire's i16 only where a response field is filled in.

use kafka_protocol::error::ResponseError;
use runnel_storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode(i16);

impl ErrorCode {
    pub const NONE: ErrorCode = ErrorCode(0);

    /// The code as the wire carries it.
    pub const fn code(self) -> i16 {
        self.0
    }

    pub const fn is_error(self) -> bool {
        self.0 != 0
    }
}

impl From<ResponseError> for ErrorCode {
    fn from(e: ResponseError) -> Self {
        ErrorCode(e.code())
    }
}

/// The code a real Kafka broker sends for a storage error.
impl From<&StorageError> for ErrorCode {
    fn from(e: &StorageError) -> Self {
        let err = match e {
            StorageError::CorruptBatch(_) => ResponseError::CorruptMessage,
            StorageError::BatchTooLarge { .. } => ResponseError::MessageTooLarge,
            StorageError::MissingKey { .. } | StorageError::InvalidRecord(_) => {
                ResponseError::InvalidRecord
            }
            StorageError::DecompressedTooLarge(_) => ResponseError::MessageTooLarge,
            StorageError::PolicyViolation(_) => ResponseError::PolicyViolation,
            StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
            StorageError::UnknownTopicOrPartition(_) => ResponseError::UnknownTopicOrPartition,
            StorageError::TopicExists(_) => ResponseError::TopicAlreadyExists,
            StorageError::InvalidConfig { .. } => ResponseError::InvalidConfig,
            StorageError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
            StorageError::InvalidTopic(_) => ResponseError::InvalidTopicException,
            StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
            StorageError::StaleProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
            StorageError::Io { .. }
            | StorageError::Poisoned
            | StorageError::Unavailable(_)
            | StorageError::Closed
            | StorageError::CorruptFile { .. }
            | StorageError::CorruptCatalog(_) => ResponseError::KafkaStorageError,
            _ => ResponseError::UnknownServerError,
        };
        ErrorCode::from(err)
    }
}

/// A storage error as a response's (code, message) pair.
pub fn code_and_message(e: &StorageError) -> (i16, Option<kafka_protocol::protocol::StrBytes>) {
    (
        ErrorCode::from(e).code(),
        Some(crate::handlers::str_bytes(&e.to_string())),
    )
}
