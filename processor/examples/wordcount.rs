//! WordCount written out with the processor's API, run against any Kafka-compatible cluster:
//!
//!     cargo run --release -p runnel-processor --example wordcount -- 127.0.0.1:9092 lines counts
//!
//! Words of each line, repartitioned by word (so each word's total lives in one task whatever partition
//! its lines came from), and after every batch the running total of each word the batch touched. Output,
//! totals and input offsets commit in one transaction per batch: kill it any time, it resumes exactly.

use std::sync::Arc;
use std::time::Duration;

use runnel_clients::{ClientConfig, Cluster};
use runnel_processor::runtime::JobMetrics;
use runnel_processor::{JobConfig, Json, Runtime, StreamingContext, Utf8};

fn wordcount(
    ctx: &mut StreamingContext,
    input: &str,
    output: &str,
) -> Result<(), runnel_processor::ProcessorError> {
    let lines = ctx.topic(input, Utf8, Utf8);
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
    ctx.to_topic(&totals, output, Utf8, Utf8);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, output] = args.as_slice() else {
        return Err("usage: wordcount BOOTSTRAP INPUT OUTPUT".into());
    };
    let cluster = Cluster::connect(ClientConfig::new(bootstrap)).await?;
    let mut config = JobConfig::new("example-wordcount");
    config.interval = Duration::from_secs(1);
    let (input, output) = (input.clone(), output.clone());
    let job: runnel_processor::JobFn = Arc::new(move |ctx| wordcount(ctx, &input, &output));
    let runtime = Runtime::start(cluster, config, job, Arc::new(JobMetrics::default())).await?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let summary = runtime.run(stop).await?;
    eprintln!(
        "stopped after {} batches, {} records",
        summary.rounds, summary.records
    );
    Ok(())
}
