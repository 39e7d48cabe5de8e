//! WordCount: words of each record's UTF-8 value, repartitioned by word so each word's total lives in one
//! task, and after every batch the running total of each word it touched.

use std::sync::Arc;

use crate::codec::{Json, Utf8};
use crate::error::JobConfigError;
use crate::jobs::JobArgs;
use crate::runtime::JobFn;

pub fn build(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let lines = ctx.topic(&args.input, Utf8, Utf8);
        let words = lines
            .flat_map(|r| {
                r.value
                    .split_whitespace()
                    .map(|w| (w.to_string(), 1u64))
                    .collect::<Vec<_>>()
            })
            .reduce_by_key(|a, b| a + b);
        let by_word = ctx.repartition(&words, "words", Utf8, Json);
        let totals = by_word.reduce_by_key(|a, b| a + b).map_with_state(
            None,
            |word: &String, n, total: &mut Option<u64>, _| {
                let t = total.unwrap_or(0) + n.copied().unwrap_or(0);
                *total = Some(t);
                Some((word.clone(), t.to_string()))
            },
        )?;
        ctx.to_topic(&totals, &args.output, Utf8, Utf8);
        Ok(())
    }))
}
