//! `runnel produce TOPIC`: one record per input line (stdin or --file), like kafka-console-producer.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use runnel_clients::{Compression, Producer, ProducerConfig, ProducerRecord};

use super::{key_value, progress, Connect};

#[derive(Args, Debug)]
pub struct ProduceArgs {
    #[command(flatten)]
    pub connect: Connect,
    pub topic: String,
    /// Read records from this file instead of stdin.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Split each line into key and value at the first occurrence of this string.
    #[arg(long = "key-separator")]
    pub key_separator: Option<String>,
    /// A header on every record, e.g. --header source=cli (repeatable).
    #[arg(long = "header", value_parser = key_value, value_name = "KEY=VALUE")]
    pub headers: Vec<(String, String)>,
    /// Write every record to this partition (default: by key, sticky for keyless records).
    #[arg(long)]
    pub partition: Option<i32>,
    /// 0, 1 or all.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    #[arg(long = "linger-ms", default_value_t = 5)]
    pub linger_ms: u64,
    #[arg(long = "batch-size", default_value_t = 65_536)]
    pub batch_size: usize,
}

pub fn parse_acks(s: &str) -> anyhow::Result<i16> {
    match s {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        other => anyhow::bail!("--acks must be 0, 1 or all, not '{other}'"),
    }
}

pub async fn run(args: ProduceArgs) -> anyhow::Result<()> {
    let acks = parse_acks(&args.acks)?;
    let compression: Compression = args.compression.parse()?;
    let cluster = args.connect.cluster().await?;
    cluster
        .topic(&args.topic)
        .await
        .with_context(|| format!("topic {} does not exist", args.topic))?;
    let producer = Producer::new(
        cluster,
        ProducerConfig {
            acks,
            idempotent: acks == -1,
            compression,
            linger: Duration::from_millis(args.linger_ms),
            batch_size: args.batch_size,
            ..ProducerConfig::default()
        },
    )
    .await?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(p) => Box::new(std::io::BufReader::new(
            std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let bar = progress(None, "producing");
    let headers: Vec<(String, Option<Bytes>)> = args
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Some(Bytes::from(v.clone()))))
        .collect();
    let started = Instant::now();
    let mut pending = Vec::new();
    let mut sent = 0u64;
    for line in input.lines() {
        let line = line.context("cannot read input")?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
                None => (None, line),
            },
            None => (None, line),
        };
        let record = ProducerRecord {
            topic: args.topic.clone(),
            partition: args.partition,
            key,
            value: Some(Bytes::from(value)),
            headers: headers.clone(),
            timestamp: None,
        };
        pending.push(producer.send(record).await?);
        sent += 1;
        bar.inc(1);
        // Bound memory on large inputs: settle acknowledgements as they arrive.
        if pending.len() >= 10_000 {
            for d in pending.drain(..) {
                d.await?;
            }
        }
    }
    producer.flush().await?;
    for d in pending {
        d.await?;
    }
    bar.finish_and_clear();
    eprintln!(
        "Produced {sent} records to {} in {:.2}s.",
        args.topic,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
