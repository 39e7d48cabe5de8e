//! Runnel's stream processor (first part): the batch model and the DStream operators.
//!
//! A batch is defined by offset ranges, one per source partition (`topic, partition, from, until`), so it is a
//! pure function of its ranges and can be recomputed after a failure with the same result. A [`DStream`] is a
//! recipe that turns each batch's input into values; stateful operators (windows, keyed state) advance once
//! per batch, in order, whatever number of outputs read them. Sources, sinks and exactly-once commits build
//! on this in the next steps.

pub mod batch;
pub mod codec;
pub mod context;
pub mod dstream;
pub mod error;
pub mod jobs;
pub mod output;
pub mod runtime;
pub mod state;

pub use batch::{BatchInfo, OffsetRange};
pub use codec::{Codec, Json, Raw, Utf8};
pub use context::{Record, StreamingContext};
pub use dstream::DStream;
pub use error::ProcessorError;
pub use runtime::{JobConfig, JobFn, Runtime};
