//! What a running job shows: the last batches (ranges, records, processing time, scheduling delay, as in
//! Spark Streaming's UI) and counters in Prometheus' text format.

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::batch::OffsetRange;
use crate::state::lock;

/// One round of batches of an instance (one batch per task it owns), as written to `<job>-status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BatchStatus {
    pub job: String,
    pub instance: String,
    /// The round's scheduled time (ms since the epoch).
    pub time_ms: u64,
    /// task → its batch number in this round.
    pub batches: Vec<(String, u64)>,
    pub ranges: Vec<OffsetRange>,
    /// Records read from the job's sources (not what a later stage reads back from a repartition topic).
    pub records: u64,
    /// From the start of the round to its commit: in the status topic, reading and computing (the record
    /// is part of the transaction); in the metrics, the commit too.
    pub processing_ms: u64,
    /// How long the round waited past its scheduled time for the previous one to finish.
    pub scheduling_delay_ms: u64,
    pub dead_letters: u64,
}

#[derive(Default)]
struct Counters {
    rounds: u64,
    records: u64,
    dead_letters: u64,
    restores: u64,
    commit_failures: u64,
    processing_ms_total: u64,
    /// The last round (the status topic keeps the history).
    last: Option<BatchStatus>,
}

#[derive(Default)]
pub struct JobMetrics {
    counters: Mutex<Counters>,
}

impl JobMetrics {
    pub fn batch_done(&self, s: BatchStatus) {
        let mut c = lock(&self.counters);
        c.rounds += 1;
        c.records += s.records;
        c.dead_letters += s.dead_letters;
        c.processing_ms_total += s.processing_ms;
        c.last = Some(s);
    }

    pub fn task_restored(&self) {
        lock(&self.counters).restores += 1;
    }

    pub fn commit_failed(&self) {
        lock(&self.counters).commit_failures += 1;
    }

    /// Batch rounds committed and source records processed so far.
    pub fn totals(&self) -> (u64, u64) {
        let c = lock(&self.counters);
        (c.rounds, c.records)
    }

    pub fn last(&self) -> Option<BatchStatus> {
        lock(&self.counters).last.clone()
    }

    /// Prometheus' text exposition format.
    pub fn render(&self, job: &str) -> String {
        render_jobs(&[(job, self)])
    }
}

type Read = fn(&Counters) -> Option<u64>;

const FAMILIES: &[(&str, &str, &str, Read)] = &[
    (
        "runnel_job_batches_total",
        "counter",
        "Batch rounds committed.",
        |c| Some(c.rounds),
    ),
    (
        "runnel_job_records_total",
        "counter",
        "Source records processed.",
        |c| Some(c.records),
    ),
    (
        "runnel_job_dead_letters_total",
        "counter",
        "Records sent to the dead-letter topic.",
        |c| Some(c.dead_letters),
    ),
    (
        "runnel_job_task_restores_total",
        "counter",
        "Tasks restored from the changelog.",
        |c| Some(c.restores),
    ),
    (
        "runnel_job_commit_failures_total",
        "counter",
        "Batches whose transaction failed.",
        |c| Some(c.commit_failures),
    ),
    (
        "runnel_job_processing_ms_total",
        "counter",
        "Time spent processing batches, commits included.",
        |c| Some(c.processing_ms_total),
    ),
    (
        "runnel_job_last_batch_processing_ms",
        "gauge",
        "Processing time of the last batch.",
        |c| c.last.as_ref().map(|s| s.processing_ms),
    ),
    (
        "runnel_job_last_batch_scheduling_delay_ms",
        "gauge",
        "Scheduling delay of the last batch.",
        |c| c.last.as_ref().map(|s| s.scheduling_delay_ms),
    ),
    (
        "runnel_job_last_batch_records",
        "gauge",
        "Source records in the last batch.",
        |c| c.last.as_ref().map(|s| s.records),
    ),
];

/// Several jobs' metrics in one exposition: each family once, a sample per job.
pub fn render_jobs(jobs: &[(&str, &JobMetrics)]) -> String {
    let mut out = String::new();
    for (name, kind, help, read) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (job, m) in jobs {
            if let Some(v) = read(&lock(&m.counters)) {
                let _ = writeln!(out, "{name}{{job=\"{job}\"}} {v}");
            }
        }
    }
    out
}

/// What a scrape answers: the metrics as they are now, in Prometheus' text format.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Serves `GET /metrics` (any path, in fact) with `render`'s text until the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, render: Render) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            return;
        };
        let render = Arc::clone(&render);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = render();
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
        });
    }
}
