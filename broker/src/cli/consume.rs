//! `runnel consume TOPIC`: print records (value only, key and value, or JSON lines), like
//! kafka-console-consumer; standalone (assigned partitions) or in a group.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use runnel_clients::{Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel, OffsetReset};

use super::Connect;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// The value, one per line.
    Value,
    /// KEY<separator>VALUE, one per line.
    KeyValue,
    /// One JSON object per line with partition, offset, timestamp, key, value and headers.
    Json,
}

#[derive(Args, Debug)]
pub struct ConsumeArgs {
    #[command(flatten)]
    pub connect: Connect,
    pub topic: String,
    /// Start at the earliest offset (default: only new records).
    #[arg(long = "from-beginning")]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long)]
    pub offset: Option<i64>,
    /// Start at the first record at or after this time (epoch ms or 2024-05-01T12:00:00).
    #[arg(long = "from-timestamp")]
    pub from_timestamp: Option<String>,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Consume as a member of this group (committing offsets) instead of standalone.
    #[arg(long)]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(long = "max-messages")]
    pub max_messages: Option<u64>,
    /// Stop when no record arrived for this long.
    #[arg(long = "timeout-ms")]
    pub timeout_ms: Option<u64>,
    #[arg(long = "isolation-level", default_value = "read_uncommitted")]
    pub isolation_level: String,
    #[arg(long, value_enum, default_value_t = Format::Value)]
    pub format: Format,
    /// Separator between key and value for --format key-value.
    #[arg(long = "key-separator", default_value = "\t")]
    pub key_separator: String,
}

fn text(b: &Option<bytes::Bytes>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned())
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<String>) -> String {
    s.map_or("null".to_string(), |s| json_string(&s))
}

pub fn render(r: &ConsumerRecord, format: Format, sep: &str) -> String {
    match format {
        Format::Value => text(&r.value).unwrap_or_else(|| "null".into()),
        Format::KeyValue => format!(
            "{}{sep}{}",
            text(&r.key).unwrap_or_else(|| "null".into()),
            text(&r.value).unwrap_or_else(|| "null".into())
        ),
        Format::Json => {
            let headers: Vec<String> = r
                .headers
                .iter()
                .map(|(k, v)| format!("[{},{}]", json_string(k), json_opt(text(v))))
                .collect();
            format!(
                "{{\"topic\":{},\"partition\":{},\"offset\":{},\"timestamp\":{},\"key\":{},\"value\":{},\"headers\":[{}]}}",
                json_string(&r.topic),
                r.partition,
                r.offset,
                r.timestamp,
                json_opt(text(&r.key)),
                json_opt(text(&r.value)),
                headers.join(",")
            )
        }
    }
}

pub async fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    let isolation = match args.isolation_level.as_str() {
        "read_committed" => IsolationLevel::ReadCommitted,
        "read_uncommitted" => IsolationLevel::ReadUncommitted,
        other => anyhow::bail!(
            "--isolation-level must be read_committed or read_uncommitted, not '{other}'"
        ),
    };
    if args.offset.is_some() && args.partition.is_none() {
        anyhow::bail!("--offset needs --partition");
    }
    let start_ts = args
        .from_timestamp
        .as_deref()
        .map(super::time::parse_datetime)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let cluster = args.connect.cluster().await?;
    let info = cluster
        .topic(&args.topic)
        .await
        .with_context(|| format!("topic {} does not exist", args.topic))?;
    let config = ConsumerConfig {
        group_id: args.group.clone(),
        auto_offset_reset: if args.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        // Offsets are committed explicitly for what was printed, so --max-messages never skips records.
        enable_auto_commit: false,
        isolation,
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(cluster, config);
    let parts: Vec<(String, i32)> = match args.partition {
        Some(p) => vec![(args.topic.clone(), p)],
        None => (0..info.partitions.len() as i32)
            .map(|p| (args.topic.clone(), p))
            .collect(),
    };
    match (&args.group, args.partition) {
        (Some(_), None) => consumer.subscribe(vec![args.topic.clone()])?,
        _ => {
            consumer.assign(parts.clone());
            if let Some(o) = args.offset {
                consumer.seek(parts[0].clone(), o);
            } else if let Some(ts) = start_ts {
                consumer.seek_to_timestamp(&parts, ts).await?;
            } else if args.from_beginning && args.group.is_none() {
                consumer.seek_to_beginning(&parts).await?;
            } else if args.group.is_none() {
                consumer.seek_to_end(&parts).await?;
            }
        }
    }
    let idle = args.timeout_ms.map(Duration::from_millis);
    let mut last = Instant::now();
    let mut count = 0u64;
    let mut printed: std::collections::BTreeMap<(String, i32), i64> =
        std::collections::BTreeMap::new();
    let mut last_commit = Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    'outer: loop {
        let wait = idle.map_or(Duration::from_millis(500), |i| {
            i.saturating_sub(last.elapsed())
                .max(Duration::from_millis(1))
        });
        let records = consumer.poll(wait.min(Duration::from_millis(500))).await?;
        if records.is_empty() {
            out.flush()?;
            if idle.is_some_and(|i| last.elapsed() >= i) {
                break;
            }
            continue;
        }
        last = Instant::now();
        for r in &records {
            writeln!(out, "{}", render(r, args.format, &args.key_separator))?;
            printed.insert((r.topic.clone(), r.partition), r.offset + 1);
            count += 1;
            if args.max_messages.is_some_and(|m| count >= m) {
                break 'outer;
            }
        }
        if args.group.is_some() && last_commit.elapsed() >= Duration::from_secs(1) {
            out.flush()?;
            commit(&mut consumer, &printed).await;
            last_commit = Instant::now();
        }
    }
    out.flush()?;
    drop(out);
    if args.group.is_some() {
        commit(&mut consumer, &printed).await;
    }
    consumer.close().await?;
    eprintln!("Processed {count} records.");
    Ok(())
}

async fn commit(consumer: &mut Consumer, printed: &std::collections::BTreeMap<(String, i32), i64>) {
    let offsets: Vec<(String, i32, i64)> = printed
        .iter()
        .map(|((t, p), o)| (t.clone(), *p, *o))
        .collect();
    if let Err(e) = consumer.commit_offsets(&offsets).await {
        tracing::warn!(error = %e, "offset commit failed");
    }
}
