//! The produce path of a cluster broker: batches from every connection, for every partition, are gathered
//! for at most `diskless.commit.interval.ms` (or until `diskless.commit.max.bytes`), uploaded as one object,
//! committed in one database transaction ([`super::batch_index::commit`]), and only then answered. Rounds run
//! one after another, so two batches of one producer to one partition are committed in the order they came;
//! the next round gathers while the current one uploads and commits, its interval counted from its first
//! batch's arrival. A failed upload or commit answers every
//! batch of its round with an error and leaves nothing behind but an orphan object for the collector.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use runnel_storage::batch::BatchHeader;
use runnel_storage::log::ControlType;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::batch_index::{self, Appended, Staged};
use super::objects::{ObjectKey, ObjectStorage};
use super::reader::ReadCache;
use super::stats::PipelineStats;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The object store refused or did not answer: nothing was committed (KAFKA_STORAGE_ERROR, retriable).
    #[error("uploading to object storage failed: {0}")]
    Upload(String),
    /// The database did not commit the round: nothing of it is in any partition (retriable).
    #[error("committing to the metadata database failed: {0}")]
    Commit(String),
    #[error("the broker is shutting down")]
    Closed,
}

/// How rounds are cut.
#[derive(Debug, Clone, Copy)]
pub struct RoundLimits {
    /// The longest a batch waits for others before its round is uploaded.
    pub interval: Duration,
    /// A round is uploaded at once when it holds this many bytes.
    pub max_bytes: usize,
}

impl Default for RoundLimits {
    fn default() -> Self {
        RoundLimits {
            interval: Duration::from_millis(25),
            max_bytes: 8 << 20,
        }
    }
}

struct Submission {
    topic_id: Uuid,
    partition: i32,
    bytes: Bytes,
    header: BatchHeader,
    control: ControlType,
    /// When it was handed over: its round's interval counts from here, not from when the previous round
    /// let go of the pipeline.
    arrived: Instant,
    reply: oneshot::Sender<Result<Appended, CommitError>>,
}

/// A batch handed to the pipeline, to be answered when its round commits.
pub struct Pending(oneshot::Receiver<Result<Appended, CommitError>>);

impl Pending {
    pub async fn outcome(self) -> Result<Appended, CommitError> {
        self.0.await.map_err(|_| CommitError::Closed)?
    }
}

/// A handle to this broker's commit task; cheap to clone.
#[derive(Clone)]
pub struct CommitPipeline {
    submit: mpsc::Sender<Submission>,
    stats: Arc<PipelineStats>,
}

impl CommitPipeline {
    /// Starts the commit task for broker `node_id`; `metadata_url` is the database it commits to (it
    /// reconnects after the connection is lost). Committed batches go into `cache` too, so this broker
    /// serves its own fresh writes from memory.
    pub fn start(
        store: Arc<ObjectStorage>,
        metadata_url: String,
        node_id: i32,
        limits: RoundLimits,
        cache: Arc<ReadCache>,
    ) -> Self {
        // Bounded: a stalled store or database pushes back on producers instead of buffering without end.
        let (submit, rx) = mpsc::channel(4096);
        let stats = Arc::new(PipelineStats::default());
        let engines = Engines {
            store,
            metadata_url,
            node_id,
            stats: Arc::clone(&stats),
        };
        tokio::spawn(run(rx, engines, limits, cache));
        CommitPipeline { submit, stats }
    }

    /// Latencies and counts of this broker's rounds.
    pub fn stats(&self) -> &PipelineStats {
        &self.stats
    }

    /// Appends one validated batch; answers once it is committed (or why it is not).
    pub async fn append(
        &self,
        topic_id: Uuid,
        partition: i32,
        bytes: Bytes,
        header: BatchHeader,
    ) -> Result<Appended, CommitError> {
        self.submit(topic_id, partition, bytes, header, ControlType::Other)
            .await?
            .outcome()
            .await
    }

    /// Queues one validated batch (waiting while the queue is full) without waiting for its commit, so the
    /// batches of one request are queued back to back and share a round.
    pub async fn submit(
        &self,
        topic_id: Uuid,
        partition: i32,
        bytes: Bytes,
        header: BatchHeader,
        control: ControlType,
    ) -> Result<Pending, CommitError> {
        let (reply, answer) = oneshot::channel();
        self.submit
            .send(Submission {
                topic_id,
                partition,
                bytes,
                header,
                control,
                arrived: Instant::now(),
                reply,
            })
            .await
            .map_err(|_| CommitError::Closed)?;
        Ok(Pending(answer))
    }
}

/// What a round is uploaded to and committed in.
struct Engines {
    store: Arc<ObjectStorage>,
    metadata_url: String,
    node_id: i32,
    stats: Arc<PipelineStats>,
}

async fn run(
    mut rx: mpsc::Receiver<Submission>,
    engines: Engines,
    limits: RoundLimits,
    cache: Arc<ReadCache>,
) {
    let mut client: Option<tokio_postgres::Client> = None;
    while let Some(first) = rx.recv().await {
        // A batch that already waited through the previous round's upload and commit has had its interval:
        // its round is cut from what is queued by now instead of waiting a whole interval more.
        let deadline = first.arrived + limits.interval;
        let mut size = first.bytes.len();
        let mut round = vec![first];
        while size < limits.max_bytes {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(s)) => {
                    size += s.bytes.len();
                    round.push(s);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let outcome = commit_round(&round, &engines, &mut client).await;
        match outcome {
            Ok((key, offsets, results)) => {
                for ((s, r), at) in round.into_iter().zip(results).zip(offsets) {
                    if let Appended::At(base) = r {
                        cache.insert(key.clone(), at, super::reader::patched(&s.bytes, base));
                    }
                    let _ = s.reply.send(Ok(r));
                }
            }
            Err(e) => {
                engines.stats.rounds_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, batches = round.len(), "commit round failed");
                for s in round {
                    let _ = s.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

async fn commit_round(
    round: &[Submission],
    engines: &Engines,
    client: &mut Option<tokio_postgres::Client>,
) -> Result<(ObjectKey, Vec<u64>, Vec<Appended>), CommitError> {
    let mut body = BytesMut::new();
    let mut staged = Vec::with_capacity(round.len());
    for s in round {
        staged.push(Staged {
            topic_id: s.topic_id,
            partition: s.partition,
            header: s.header,
            byte_offset: body.len() as u64,
            byte_length: u32::try_from(s.bytes.len()).unwrap_or(u32::MAX),
            control: s.control,
        });
        body.extend_from_slice(&s.bytes);
    }
    let body = body.freeze();
    let started = Instant::now();
    let key = engines
        .store
        .put_new(body.clone())
        .await
        .map_err(|e| CommitError::Upload(e.to_string()))?;
    engines.stats.upload.record(started.elapsed());
    engines
        .stats
        .bytes_uploaded
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    let db = match client {
        Some(c) if !c.is_closed() => c,
        _ => client.insert(
            super::connect(&engines.metadata_url)
                .await
                .map_err(|e| CommitError::Commit(e.to_string()))?,
        ),
    };
    let started = Instant::now();
    match batch_index::commit(db, &key, body.len() as u64, engines.node_id, &staged).await {
        Ok(results) => {
            engines.stats.commit.record(started.elapsed());
            Ok((key, staged.iter().map(|s| s.byte_offset).collect(), results))
        }
        Err(e) => {
            // A broken connection is replaced on the next round.
            if db.is_closed() {
                *client = None;
            }
            Err(CommitError::Commit(super::db::describe(&e)))
        }
    }
}
