//! Grep: the records whose value contains a pattern, key and value unchanged.

use std::sync::Arc;

use bytes::Bytes;

use crate::codec::Raw;
use crate::error::JobConfigError;
use crate::jobs::JobArgs;
use crate::runtime::JobFn;

pub fn build(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let pattern = args.option("pattern")?.as_bytes().to_vec();
    if pattern.is_empty() {
        return Err(JobConfigError::EmptyOption("pattern"));
    }
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let pattern = pattern.clone();
        let matching = ctx
            .topic::<Option<Bytes>, Bytes>(&args.input, Raw, Raw)
            .filter(move |r| {
                r.value
                    .windows(pattern.len())
                    .any(|w| w == pattern.as_slice())
            })
            // A null key stays null (not empty): Kafka partitions and compacts the two differently.
            .map(|r| (r.key.clone().flatten(), r.value.clone()));
        ctx.to_topic::<Option<Bytes>, Bytes>(&matching, &args.output, Raw, Raw);
        Ok(())
    }))
}
