//! Cluster mode (issue 12): stateless brokers on S3-compatible object storage and PostgreSQL. The design and
//! its order of construction are in docs/design.md ("Cluster mode"). Here: the metadata database's schema
//! migrations, the broker registry (membership by leases), the object store client, the batch index with
//! the produce commit transaction, the commit pipeline that gathers a broker's batches into rounds (one
//! object, one transaction each), the reader that serves fetches from the index, object storage and a
//! bounded cache, woken across brokers by the database's commit notifications, the collector of orphan
//! objects, the topic catalog table, and the node and shared partition the broker is built on.

pub mod append_watch;
pub mod batch_index;
pub mod commit_pipeline;
pub mod config;
pub mod coordinator_store;
pub mod db;
pub mod documents;
pub mod key_compaction;
pub mod node;
pub mod object_compaction;
pub mod objects;
pub mod orphans;
pub mod placement;
pub mod reader;
pub mod registry;
pub mod retention;
pub mod shared_partition;
pub mod stats;
pub mod topic_table;

pub use db::{connect, migrate, DbError};
pub use node::{ClusterNode, ClusterSettings};
pub use registry::{LiveBroker, Registry, RegistryError};
pub use shared_partition::SharedPartition;
