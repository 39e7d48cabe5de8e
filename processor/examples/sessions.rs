//! A job written with the processor's API (not one of the shipped jobs): page views keyed by user become
//! sessions. Each user's views are kept with map_with_state; a user idle for 10 seconds ends the session,
//! which is written out as "N views" under the user's key. Run it against any Kafka-compatible cluster:
//!
//!     cargo run --release -p runnel-processor --example sessions -- 127.0.0.1:9092 views sessions
//!
//! Output, session state and input offsets commit in one transaction per batch: kill it any time and it
//! resumes exactly where it was, open sessions included.

use std::sync::Arc;
use std::time::Duration;

use runnel_clients::{ClientConfig, Cluster};
use runnel_processor::runtime::{run, JobMetrics};
use runnel_processor::{JobConfig, JobFn, Utf8};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, output] = args.as_slice() else {
        return Err("usage: sessions BOOTSTRAP INPUT OUTPUT".into());
    };
    let (input, output) = (input.clone(), output.clone());
    let job: JobFn = Arc::new(move |ctx| {
        let views = ctx
            .topic::<String, String>(&input, Utf8, Utf8)
            .flat_map(|r| r.key.clone().map(|user| (user, 1u64)));
        // The views of one user are in one partition (the producer keys by user), so no repartition.
        let ended = views.map_with_state(
            Some(10_000),
            |user: &String, view, count: &mut Option<u64>, timed_out| {
                if timed_out {
                    return Some((user.clone(), format!("{} views", count.unwrap_or(0))));
                }
                *count = Some(count.unwrap_or(0) + view.copied().unwrap_or(0));
                None
            },
        )?;
        ctx.to_topic(&ended, &output, Utf8, Utf8);
        Ok(())
    });
    let mut config = JobConfig::new("example-sessions");
    config.interval = Duration::from_secs(1);
    let cluster = Cluster::connect(ClientConfig::new(bootstrap)).await?;
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let summary = run(cluster, config, job, Arc::new(JobMetrics::default()), stop).await?;
    eprintln!(
        "stopped after {} batches, {} records",
        summary.rounds, summary.records
    );
    Ok(())
}
