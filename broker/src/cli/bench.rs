//! `runnel bench`: produce, consume and end-to-end latency measurements with the Rust client, printing
//! records/s, MB/s and latency percentiles (and JSON with --json).

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use runnel_clients::{
    Compression, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};

use super::{progress, Connect};
use crate::outln;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub connect: Connect,
    /// Print the result as one JSON object.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Produce records as fast as acknowledged.
    Produce {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        #[arg(long = "record-size", default_value_t = 100)]
        record_size: usize,
        #[arg(long, default_value = "1")]
        acks: String,
        #[arg(long, default_value = "none")]
        compression: String,
        #[arg(long = "linger-ms", default_value_t = 5)]
        linger_ms: u64,
        #[arg(long = "batch-size", default_value_t = 65_536)]
        batch_size: usize,
    },
    /// Read records from the beginning of every partition.
    Consume {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
    },
    /// Produce one record at a time and time until a consumer receives it.
    Latency {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 5_000)]
        records: u64,
        #[arg(long = "record-size", default_value_t = 100)]
        record_size: usize,
    },
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(
    json: bool,
    kind: &str,
    records: u64,
    bytes: u64,
    secs: f64,
    latencies_ms: &mut [f64],
) -> std::io::Result<()> {
    latencies_ms.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let (p50, p99, p999) = (
        percentile(latencies_ms, 50.0),
        percentile(latencies_ms, 99.0),
        percentile(latencies_ms, 99.9),
    );
    let rps = records as f64 / secs;
    let mbs = bytes as f64 / secs / 1e6;
    if json {
        outln!(
            "{{\"bench\":\"{kind}\",\"records\":{records},\"seconds\":{secs:.3},\"records_per_sec\":{rps:.1},\"mb_per_sec\":{mbs:.2},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\"p999_ms\":{p999:.3}}}"
        )?;
    } else {
        outln!("{kind}: {records} records in {secs:.2}s: {rps:.0} records/s, {mbs:.2} MB/s")?;
        if !latencies_ms.is_empty() {
            outln!("latency ms: p50 {p50:.2}, p99 {p99:.2}, p99.9 {p999:.2}")?;
        }
    }
    Ok(())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let cluster = args.connect.cluster().await?;
    match args.command {
        BenchCommand::Produce {
            topic,
            records,
            record_size,
            acks,
            compression,
            linger_ms,
            batch_size,
        } => {
            cluster.topic(&topic).await?;
            let acks = super::produce::parse_acks(&acks)?;
            let compression: Compression = compression.parse()?;
            let producer = Producer::new(
                cluster,
                ProducerConfig {
                    acks,
                    idempotent: acks == -1,
                    compression,
                    linger: Duration::from_millis(linger_ms),
                    batch_size,
                    ..ProducerConfig::default()
                },
            )
            .await?;
            let value = Bytes::from(vec![b'x'; record_size]);
            let bar = progress(Some(records), "producing");
            let start = Instant::now();
            let mut pending = std::collections::VecDeque::new();
            let mut latencies = Vec::with_capacity(records as usize);
            for _ in 0..records {
                let sent_at = Instant::now();
                pending.push_back((
                    sent_at,
                    producer
                        .send(ProducerRecord::new(topic.clone(), value.clone()))
                        .await?,
                ));
                if pending.len() >= 50_000 {
                    if let Some((t, d)) = pending.pop_front() {
                        d.await?;
                        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                        bar.inc(1);
                    }
                }
            }
            producer.flush().await?;
            for (t, d) in pending {
                d.await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            bar.finish_and_clear();
            report(
                args.json,
                "produce",
                records,
                records * record_size as u64,
                start.elapsed().as_secs_f64(),
                &mut latencies,
            )?;
        }
        BenchCommand::Consume { topic, records } => {
            let info = cluster.topic(&topic).await?;
            let mut consumer = Consumer::new(
                cluster,
                ConsumerConfig {
                    auto_offset_reset: OffsetReset::Earliest,
                    max_poll_records: 100_000,
                    ..ConsumerConfig::default()
                },
            );
            let parts: Vec<(String, i32)> = (0..info.partitions.len() as i32)
                .map(|p| (topic.clone(), p))
                .collect();
            consumer.assign(parts.clone());
            consumer.seek_to_beginning(&parts).await?;
            let bar = progress(Some(records), "consuming");
            let start = Instant::now();
            let (mut got, mut bytes) = (0u64, 0u64);
            let mut idle_since = Instant::now();
            while got < records {
                let batch = consumer.poll(Duration::from_millis(500)).await?;
                if batch.is_empty() {
                    if idle_since.elapsed() > Duration::from_secs(10) {
                        anyhow::bail!("only {got} of {records} records arrived");
                    }
                    continue;
                }
                idle_since = Instant::now();
                got += batch.len() as u64;
                bytes += batch
                    .iter()
                    .map(|r| r.value.as_ref().map_or(0, |v| v.len()) as u64)
                    .sum::<u64>();
                bar.set_position(got);
            }
            bar.finish_and_clear();
            report(
                args.json,
                "consume",
                got,
                bytes,
                start.elapsed().as_secs_f64(),
                &mut [],
            )?;
        }
        BenchCommand::Latency {
            topic,
            records,
            record_size,
        } => {
            let info = cluster.topic(&topic).await?;
            let producer = Producer::new(
                std::sync::Arc::clone(&cluster),
                ProducerConfig {
                    linger: Duration::ZERO,
                    ..ProducerConfig::default()
                },
            )
            .await?;
            let mut consumer = Consumer::new(
                cluster,
                ConsumerConfig {
                    fetch_max_wait: Duration::from_millis(100),
                    ..ConsumerConfig::default()
                },
            );
            let tp = (topic.clone(), 0);
            consumer.assign(vec![tp.clone()]);
            consumer.seek_to_end(std::slice::from_ref(&tp)).await?;
            let _ = info;
            let value = Bytes::from(vec![b'x'; record_size]);
            let bar = progress(Some(records), "round trips");
            let start = Instant::now();
            let mut latencies = Vec::with_capacity(records as usize);
            for _ in 0..records {
                let t = Instant::now();
                producer
                    .send(ProducerRecord::new(topic.clone(), value.clone()).with_partition(0))
                    .await?
                    .await?;
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    if !consumer.poll(Duration::from_millis(100)).await?.is_empty() {
                        break;
                    }
                    if Instant::now() > deadline {
                        anyhow::bail!("a produced record did not arrive within 30 s");
                    }
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                bar.inc(1);
            }
            bar.finish_and_clear();
            report(
                args.json,
                "latency",
                records,
                records * record_size as u64,
                start.elapsed().as_secs_f64(),
                &mut latencies,
            )?;
        }
    }
    Ok(())
}
