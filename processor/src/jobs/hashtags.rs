//! Hashtag counts from a stream of JSON tweets, per batch and over a sliding window.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec::{Json, Utf8};
use crate::context::StreamingContext;
use crate::dstream::DStream;
use crate::error::JobConfigError;
use crate::jobs::JobArgs;
use crate::runtime::JobFn;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tweet {
    #[serde(default)]
    pub user: String,
    pub text: String,
}

pub fn hashtags(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|w| w.len() > 1 && w.starts_with('#'))
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        })
        .filter(|w| w.len() > 1)
        .collect()
}

/// Every hashtag of the input's tweets, repartitioned so each tag is counted in one task.
fn tags(ctx: &mut StreamingContext, input: &str) -> DStream<(String, u64)> {
    let tweets = ctx.topic::<String, Tweet>(input, Utf8, Json);
    let tags = tweets
        .flat_map(|r| {
            hashtags(&r.value.text)
                .into_iter()
                .map(|t| (t, 1u64))
                .collect::<Vec<_>>()
        })
        .reduce_by_key(|a, b| a + b);
    ctx.repartition(&tags, "tags", Utf8, Json)
}

pub fn build(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let counts = tags(ctx, &args.input)
            .reduce_by_key(|a, b| a + b)
            .map_values(|n| n.to_string());
        ctx.to_topic(&counts, &args.output, Utf8, Utf8);
        Ok(())
    }))
}

pub fn build_windowed(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let window = args.ms("window.ms", 60_000)?;
    let slide = args.ms("slide.ms", 5_000)?;
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let counts = tags(ctx, &args.input)
            .reduce_by_key_and_window_inv(|a, b| a + b, |a, b| a - b, |n| *n > 0, window, slide)?
            .map_values(|n| n.to_string());
        ctx.to_topic(&counts, &args.output, Utf8, Utf8);
        Ok(())
    }))
}
