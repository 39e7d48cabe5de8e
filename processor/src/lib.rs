//! Runnel's stream processor: Spark-Streaming-style jobs over offset-ranged micro-batches, exactly-once.
//!
//! A batch is defined by offset ranges, one per source partition (`topic, partition, from, until`), so it is a
//! pure function of its ranges and can be recomputed after a failure with the same result. A [`DStream`] is a
//! recipe that turns each batch's input into values; stateful operators (windows, keyed state) advance once
//! per batch, in order, whatever number of outputs read them. The runtime (`runtime`) reads topic sources,
//! checkpoints state to a changelog and commits each round's output, state and offsets in one Kafka
//! transaction; `ml` holds the streaming learners; `jobs` holds the jobs the binary ships.

pub mod batch;
pub mod codec;
pub mod context;
pub mod dstream;
pub mod error;
pub mod jobs;
pub mod ml;
pub mod output;
pub mod runtime;
pub mod state;

pub use batch::{BatchInfo, OffsetRange};
pub use codec::{Codec, Json, Raw, Utf8};
pub use context::{Record, StreamingContext};
pub use dstream::DStream;
pub use error::ProcessorError;
pub use runtime::{JobConfig, JobFn, Runtime};
