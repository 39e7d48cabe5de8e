//! The producer: records are batched per partition (`linger.ms`, `batch.size`), compressed, and sent by one
//! background task that keeps at most one request in flight per partition, so retries never reorder
//! records. Idempotence (on by default, as in the Java client) numbers each batch; transactions add the
//! coordinator protocol around the same path.
//!
//! This file holds the public face of the producer: [`Producer`] with its constructor, `send`, `flush` and
//! `close`, the settings ([`ProducerConfig`], [`Compression`]) and the record types, plus the state the
//! background task and the callers share. The machinery behind it lives in submodules along its natural
//! seams: `accumulator` (per-partition batching), `sender` (the background task that seals, sends, retries
//! and settles batches) and `transactions` (the transaction coordinator protocol).

mod accumulator;
mod sender;
mod transactions;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, ProducerId};
use tokio::sync::{oneshot, Notify};

use crate::cluster::Cluster;
use crate::error::{check, ClientError, Result};
use crate::partitioner::Xorshift;
use crate::TopicPartition;

use accumulator::Accumulating;
use sender::Sealed;
use transactions::TxnState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn codec(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Ok(Compression::None),
            "gzip" => Ok(Compression::Gzip),
            "snappy" => Ok(Compression::Snappy),
            "lz4" => Ok(Compression::Lz4),
            "zstd" => Ok(Compression::Zstd),
            other => Err(ClientError::Invalid(format!(
                "unknown compression '{other}' (none, gzip, snappy, lz4, zstd)"
            ))),
        }
    }
}

/// Producer settings with the Java client's defaults (Kafka's names in the docs).
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// acks: 0, 1 or -1 (all).
    pub acks: i16,
    /// linger.ms
    pub linger: Duration,
    /// batch.size in bytes.
    pub batch_size: usize,
    /// compression.type
    pub compression: Compression,
    /// enable.idempotence
    pub idempotent: bool,
    /// transactional.id
    pub transactional_id: Option<String>,
    /// transaction.timeout.ms
    pub transaction_timeout_ms: i32,
    /// delivery.timeout.ms: how long a record may wait for its acknowledgement, retries included.
    pub delivery_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: -1,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            compression: Compression::None,
            idempotent: true,
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            delivery_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms; now when None.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn with_partition(mut self, p: i32) -> Self {
        self.partition = Some(p);
        self
    }
    pub fn with_header(mut self, k: impl Into<String>, v: Option<Bytes>) -> Self {
        self.headers.push((k.into(), v));
        self
    }
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    /// -1 with acks=0, where the broker says nothing.
    pub offset: i64,
    pub timestamp: i64,
}

/// The pending result of one `send`.
pub struct DeliveryFuture(oneshot::Receiver<Result<RecordMetadata>>);

impl std::future::Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(ClientError::Closed)))
    }
}

struct State {
    batches: HashMap<TopicPartition, Accumulating>,
    /// Batches that reached batch.size, oldest first, waiting for their partition's turn.
    full: std::collections::VecDeque<(TopicPartition, Accumulating)>,
    queued_bytes: usize,
    retry: Vec<Sealed>,
    sticky: HashMap<String, i32>,
    sequences: HashMap<TopicPartition, i32>,
    producer_id: i64,
    epoch: i16,
    in_flight: usize,
    flush_requested: bool,
    txn: TxnState,
    fenced: bool,
    rng: Xorshift,
}

struct Inner {
    cluster: Arc<Cluster>,
    config: ProducerConfig,
    state: Mutex<State>,
    wake: Notify,
    idle: Notify,
    /// Woken when sent batches free buffer room.
    space: Notify,
    closed: AtomicBool,
}

/// An async Kafka producer. Cheap to clone; every clone feeds the same batches.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

impl Producer {
    pub async fn new(cluster: Arc<Cluster>, config: ProducerConfig) -> Result<Producer> {
        let idempotent = config.idempotent || config.transactional_id.is_some();
        if idempotent && config.acks != -1 {
            return Err(ClientError::Invalid(
                "idempotence needs acks=all (-1)".into(),
            ));
        }
        let inner = Arc::new(Inner {
            cluster,
            config,
            state: Mutex::new(State {
                batches: HashMap::new(),
                full: std::collections::VecDeque::new(),
                queued_bytes: 0,
                retry: Vec::new(),
                sticky: HashMap::new(),
                sequences: HashMap::new(),
                producer_id: -1,
                epoch: -1,
                in_flight: 0,
                flush_requested: false,
                txn: TxnState::default(),
                fenced: false,
                rng: Xorshift::seeded(),
            }),
            wake: Notify::new(),
            idle: Notify::new(),
            space: Notify::new(),
            closed: AtomicBool::new(false),
        });
        if idempotent && inner.config.transactional_id.is_none() {
            let req = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(i32::MAX)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1);
            // A broker that just started may still be loading its producer ids: retry what is retriable.
            let mut attempt = 0;
            let resp = loop {
                let resp = inner.cluster.any().await?.call(&req).await?;
                let err = match check(|| "InitProducerId".into(), resp.error_code) {
                    Ok(()) => break resp,
                    Err(e) => e,
                };
                attempt += 1;
                if !err.is_retriable() || attempt > inner.cluster.config.retries.max(20) {
                    return Err(err);
                }
                tokio::time::sleep(inner.cluster.config.retry_backoff).await;
            };
            let mut s = inner.lock();
            s.producer_id = resp.producer_id.0;
            s.epoch = resp.producer_epoch;
        }
        let task = Arc::clone(&inner);
        tokio::spawn(async move { task.run().await });
        Ok(Producer { inner })
    }

    /// Queues a record; the returned future resolves once it is acknowledged (or fails).
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(ClientError::Closed);
        }
        let topic = self.inner.cluster.topic(&record.topic).await?;
        let partitions = topic.partitions.len();
        self.inner.wait_for_room().await;
        let (tx, rx) = oneshot::channel();
        let full = self.inner.append(record, partitions, tx)?;
        if full || self.inner.config.linger.is_zero() {
            self.inner.wake.notify_one();
        }
        Ok(DeliveryFuture(rx))
    }

    /// Sends everything queued and waits until it is acknowledged.
    pub async fn flush(&self) -> Result<()> {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = self.inner.lock();
                if s.batches.is_empty()
                    && s.full.is_empty()
                    && s.retry.is_empty()
                    && s.in_flight == 0
                {
                    return Ok(());
                }
                s.flush_requested = true;
            }
            self.inner.wake.notify_one();
            notified.await;
        }
    }

    /// Flushes, then stops the background task.
    pub async fn close(&self) -> Result<()> {
        let r = self.flush().await;
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        r
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn map_fenced(&self, e: ClientError) -> ClientError {
        let fenced = [
            ResponseError::ProducerFenced.code(),
            ResponseError::InvalidProducerEpoch.code(),
        ];
        if e.code().is_some_and(|c| fenced.contains(&c)) {
            self.lock().fenced = true;
            ClientError::Fenced
        } else {
            e
        }
    }
}
