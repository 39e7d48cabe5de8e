//! `runnel jobs`: run one of the shipped jobs against any Kafka-compatible cluster, list them, and show a
//! job's recent batches (from its `<job>-status` topic, wherever it runs).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use runnel_clients::consumer::{list_offsets, IsolationLevel};
use runnel_clients::{Consumer, ConsumerConfig};
use runnel_processor::jobs;
use runnel_processor::runtime::{BatchStatus, JobMetrics, Runtime};

use crate::cli::{key_value, Connect};
use crate::outln;

#[derive(Args, Debug)]
pub struct JobsArgs {
    #[command(flatten)]
    connect: Connect,
    #[command(subcommand)]
    command: JobsCommand,
}

#[derive(Subcommand, Debug)]
enum JobsCommand {
    /// List the jobs this binary ships.
    List,
    /// Run a job against the cluster until Ctrl-C (exactly-once: output, state and offsets commit together).
    Run(Box<RunArgs>),
    /// Show a job's latest batches: offset ranges, records, processing time and scheduling delay.
    Status(StatusArgs),
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The job (see `runnel jobs list`).
    job: String,
    /// Source topic.
    #[arg(long)]
    input: String,
    /// Output topic.
    #[arg(long)]
    output: String,
    /// The job's name: its consumer group and the prefix of its internal topics (default: the job).
    #[arg(long)]
    name: Option<String>,
    /// This instance's id; give each instance of one job its own.
    #[arg(long = "instance-id")]
    instance_id: Option<String>,
    /// Batch interval.
    #[arg(long = "interval-ms", value_name = "MS")]
    interval_ms: Option<u64>,
    /// Records per second per partition at most (spark.streaming.kafka.maxRatePerPartition).
    #[arg(long = "max-rate-per-partition", value_name = "N")]
    max_rate: Option<u64>,
    /// Size batches to the rate the job keeps up with.
    #[arg(long)]
    backpressure: bool,
    /// Where to start without a checkpoint or committed offset.
    #[arg(long = "start-from", value_parser = ["earliest", "latest"])]
    start_from: Option<String>,
    /// Send records that cannot be read here (with the reason in header runnel.error) instead of failing.
    #[arg(long = "dead-letter-topic", value_name = "TOPIC")]
    dead_letter: Option<String>,
    /// A job option, e.g. -o pattern=error, -o window.ms=60000 (repeatable).
    #[arg(short = 'o', long = "option", value_name = "KEY=VALUE", value_parser = key_value)]
    options: Vec<(String, String)>,
    /// Serve Prometheus metrics on this address (GET /metrics).
    #[arg(long = "metrics-listen", value_name = "HOST:PORT")]
    metrics_listen: Option<String>,
    /// Stop after this many batches.
    #[arg(long = "max-batches")]
    max_batches: Option<u64>,
    /// Stop after ROUNDS batch rounds in a row that find no new input (1 without a value).
    #[arg(long = "stop-when-idle", value_name = "ROUNDS", num_args = 0..=1, default_missing_value = "1")]
    stop_when_idle: Option<u64>,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// The job's name.
    name: String,
    /// How many of the latest batches to show.
    #[arg(long, default_value_t = 10)]
    last: usize,
}

pub async fn run(args: JobsArgs) -> anyhow::Result<()> {
    match args.command {
        JobsCommand::List => {
            for j in jobs::JOBS {
                outln!("{:<16} {}", j.name, j.about)?;
            }
            Ok(())
        }
        JobsCommand::Run(r) => run_job(&args.connect, *r).await,
        JobsCommand::Status(s) => status(&args.connect, s).await,
    }
}

fn settings(r: &RunArgs) -> BTreeMap<String, String> {
    let mut s: BTreeMap<String, String> = r.options.iter().cloned().collect();
    s.insert("input".into(), r.input.clone());
    s.insert("output".into(), r.output.clone());
    let mut put = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            s.insert(k.to_string(), v);
        }
    };
    put("name", r.name.clone());
    put("instance.id", r.instance_id.clone());
    put("interval.ms", r.interval_ms.map(|v| v.to_string()));
    put("max.rate.per.partition", r.max_rate.map(|v| v.to_string()));
    put("backpressure", r.backpressure.then(|| "true".into()));
    put("start.from", r.start_from.clone());
    put("dead.letter.topic", r.dead_letter.clone());
    put("max.batches", r.max_batches.map(|v| v.to_string()));
    put("stop.when.idle", r.stop_when_idle.map(|v| v.to_string()));
    s
}

async fn run_job(connect: &Connect, r: RunArgs) -> anyhow::Result<()> {
    let (config, job) = jobs::configure(&r.job, &settings(&r)).map_err(anyhow::Error::msg)?;
    let cluster = connect.cluster().await?;
    let metrics = Arc::new(JobMetrics::default());
    if let Some(addr) = &r.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for metrics"))?;
        let (name, m) = (config.name.clone(), Arc::clone(&metrics));
        tokio::spawn(runnel_processor::runtime::metrics::serve(
            listener,
            Arc::new(move || m.render(&name)),
        ));
    }
    let name = config.name.clone();
    let runtime = Runtime::start(cluster, config, job, Arc::clone(&metrics))
        .await
        .with_context(|| format!("cannot start job {name}"))?;
    eprintln!("job {name} running; Ctrl-C stops it after the current batch");
    // A live line on a terminal: batches, records and the last batch's times.
    let bar = crate::cli::progress(None, &format!("job {name}"));
    let watched = Arc::clone(&metrics);
    let ticker = {
        let bar = bar.clone();
        let name = name.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (rounds, records) = watched.totals();
                bar.set_position(records);
                if let Some(last) = watched.last() {
                    bar.set_message(format!(
                        "job {name}: {rounds} batches, last {} ms (delay {} ms); records",
                        last.processing_ms, last.scheduling_delay_ms
                    ));
                }
            }
        })
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let result = runtime.run(stop).await;
    ticker.abort();
    bar.finish_and_clear();
    let summary = result.with_context(|| format!("job {name} failed"))?;
    eprintln!(
        "job {name} stopped after {} batches, {} records",
        summary.rounds, summary.records
    );
    Ok(())
}

async fn status(connect: &Connect, s: StatusArgs) -> anyhow::Result<()> {
    let cluster = connect.cluster().await?;
    let tp = (format!("{}-status", s.name), 0);
    let tps = [tp.clone()];
    let ends = list_offsets(&cluster, &tps, -1, IsolationLevel::ReadCommitted)
        .await
        .with_context(|| format!("job {} has no status topic {}", s.name, tp.0))?;
    let end = ends.get(&tp).map_or(0, |(o, _)| *o);
    let starts = list_offsets(&cluster, &tps, -2, IsolationLevel::ReadCommitted).await?;
    let start = starts.get(&tp).map_or(0, |(o, _)| *o);
    let from = (end - s.last as i64).max(start);
    let mut c = Consumer::new(
        Arc::clone(&cluster),
        ConsumerConfig {
            isolation: IsolationLevel::ReadCommitted,
            ..ConsumerConfig::default()
        },
    );
    c.assign(tps.to_vec());
    c.seek(tp.clone(), from);
    let mut rows: Vec<BatchStatus> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.position(&tp).is_none_or(|p| p < end) && tokio::time::Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(200)).await? {
            if let Some(v) = r.value {
                if let Ok(st) = serde_json::from_slice::<BatchStatus>(&v) {
                    rows.push(st);
                }
            }
        }
    }
    outln!(
        "{:<10} {:<24} {:>8} {:>10} {:>9}  RANGES",
        "INSTANCE",
        "BATCHES",
        "RECORDS",
        "PROCESS_MS",
        "DELAY_MS"
    )?;
    for st in rows.iter().rev().take(s.last).rev() {
        let batches: Vec<String> = st.batches.iter().map(|(t, b)| format!("{t}#{b}")).collect();
        let ranges: Vec<String> = st
            .ranges
            .iter()
            .filter(|r| r.until > r.from)
            .map(|r| format!("{}/{}[{},{})", r.topic, r.partition, r.from, r.until))
            .collect();
        outln!(
            "{:<10} {:<24} {:>8} {:>10} {:>9}  {}",
            st.instance,
            batches.join(","),
            st.records,
            st.processing_ms,
            st.scheduling_delay_ms,
            ranges.join(" ")
        )?;
    }
    Ok(())
}
