//! Cluster mode (issue 12): stateless brokers on S3-compatible object storage and PostgreSQL. The design and
//! its order of construction are in docs/design.md ("Cluster mode"); what is here so far: the metadata
//! database's schema migrations, the broker registry (membership by leases), the object store client and
//! the batch index with the produce commit transaction, and the commit pipeline that gathers a broker's
//! batches into rounds (one object, one transaction each), and the reader that serves fetches from the index,
//! object storage and a bounded cache, woken across brokers by the database's commit notifications, and
//! the collector of orphan objects.

pub mod append_watch;
pub mod batch_index;
pub mod commit_pipeline;
pub mod db;
pub mod objects;
pub mod orphans;
pub mod reader;
pub mod registry;

pub use db::{connect, migrate, DbError};
pub use registry::{LiveBroker, Registry, RegistryError};
