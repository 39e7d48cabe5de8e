//! Runnel's storage engine: partition logs of Kafka v2 record batches kept exactly as received, with sparse
//! indexes (memory-mapped once sealed), crash recovery, retention, idempotent-producer state and the topic catalog.
//!
//! It knows record-batch headers, not the network: the broker decides Kafka error codes from [`StorageError`].

pub mod atomic_file;
pub mod batch;
pub mod builder;
pub mod catalog;
pub mod compression;
pub mod config;
pub mod error;
pub mod index;
mod index_file;
pub mod log;
pub mod open_files;
pub mod producer_state;
pub mod records;
pub mod segment;

pub use catalog::{Catalog, TopicMeta};
pub use config::LogConfig;
pub use error::{Result, StorageError};
pub use log::{AppendInfo, PartitionLog, ReadPlan, TimestampOffset};

/// Milliseconds since the Unix epoch, the unit of every Kafka timestamp.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
