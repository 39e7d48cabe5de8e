//! Runs one of the jobs shipped in the `runnel` binary from Rust (what `runnel jobs run` does), e.g. the
//! seed talk's trending hashtags over a sliding window:
//!
//!     cargo run --release -p runnel-processor --example shipped_job -- 127.0.0.1:9092 hashtags-window \
//!         input=tweets output=trending window.ms=60000 slide.ms=5000
//!
//! Jobs: wordcount, grep, hashtags, hashtags-window, mood, join, kmeans (their code: processor/src/jobs).

use std::collections::BTreeMap;
use std::sync::Arc;

use runnel_clients::{ClientConfig, Cluster};
use runnel_processor::jobs;
use runnel_processor::runtime::{run, JobMetrics};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, name, settings @ ..] = args.as_slice() else {
        return Err("usage: shipped_job BOOTSTRAP JOB key=value...".into());
    };
    let mut map = BTreeMap::new();
    for s in settings {
        let (k, v) = s.split_once('=').ok_or(format!("{s} is not key=value"))?;
        map.insert(k.to_string(), v.to_string());
    }
    let (config, job) = jobs::configure(name, &map)?;
    let cluster = Cluster::connect(ClientConfig::new(bootstrap)).await?;
    let stop = std::future::pending::<()>();
    run(cluster, config, job, Arc::new(JobMetrics::default()), stop).await?;
    Ok(())
}
