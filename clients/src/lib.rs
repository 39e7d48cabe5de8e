//! Runnel's Kafka client: an async producer, consumer and admin client over the Kafka wire protocol, for
//! Runnel and for any Kafka-compatible cluster (Apache Kafka included).
//!
//! Layers: [`connection`] (one pipelined TCP connection), [`cluster`] (brokers, metadata, coordinators),
//! then the [`producer`], [`consumer`] and [`admin`] built on them.

pub mod acls;
pub mod admin;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group;
pub mod partitioner;
pub mod producer;
pub mod records;
pub mod sasl;
pub mod security;

pub use admin::Admin;
pub use cluster::Cluster;
pub use config::ClientConfig;
pub use consumer::{Consumer, ConsumerConfig, IsolationLevel, OffsetReset};
pub use error::{ClientError, Result};
pub use producer::{Compression, Producer, ProducerConfig, ProducerRecord};
pub use records::ConsumerRecord;

/// A topic and partition.
pub type TopicPartition = (String, i32);
