//! Runnel's broker: the Kafka protocol server over the storage crate's partition logs.

pub mod api;
pub mod broker;
pub mod cli;
pub mod cluster;
pub mod colocated;
pub mod config;
pub mod connection;
pub mod connection_limits;
pub mod dispatch;
pub mod dynamic_config;
pub mod error_code;
pub mod fuzz;
pub mod groups;
pub mod handlers;
pub mod internal_log;
pub mod metadata_file;
pub mod metrics;
pub mod producer_ids;
pub mod protocol;
pub mod quotas;
pub mod request;
pub mod security;
pub mod server;
pub mod topics;
pub mod transactions;
