//! A stream joined with a static dataset: each record's key is looked up in a table loaded when the job
//! starts, from a file of `key,value` lines (option `table`) or from a topic (option `table.topic`: the
//! latest value of every key); the output value is JSON {"value": the record's value, "joined": the table's
//! value or null} (a left join, so no record is lost).

use std::collections::HashMap;
use std::sync::Arc;

use crate::codec::{Json, Utf8};
use crate::error::JobConfigError;
use crate::jobs::JobArgs;
use crate::runtime::JobFn;

pub fn load_table(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(','))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

enum Source {
    File(Arc<HashMap<String, String>>),
    Topic(String),
}

pub fn build(args: &JobArgs) -> Result<JobFn, JobConfigError> {
    let source = match (args.options.get("table"), args.options.get("table.topic")) {
        (Some(_), None) => {
            let path = args.path("table")?;
            let text = std::fs::read_to_string(&path).map_err(|error| JobConfigError::Read {
                what: "table",
                path: path.clone(),
                error,
            })?;
            Source::File(Arc::new(load_table(&text)))
        }
        (None, Some(topic)) => Source::Topic(topic.clone()),
        _ => return Err(JobConfigError::TableSource),
    };
    let args = args.clone();
    Ok(Arc::new(move |ctx| {
        let table = match &source {
            Source::File(t) => Arc::clone(t),
            Source::Topic(topic) => ctx.table(topic),
        };
        let records = ctx.topic(&args.input, Utf8, Utf8);
        let keyed = records.flat_map(|r| r.key.clone().map(|k| (k, r.value.clone())));
        let joined = keyed
            .left_join(table)
            .map(|(k, (v, t))| (k.clone(), serde_json::json!({ "value": v, "joined": t })));
        ctx.to_topic(&joined, &args.output, Utf8, Json);
        Ok(())
    }))
}
