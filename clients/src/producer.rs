//! The producer: records are batched per partition (`linger.ms`, `batch.size`), compressed, and sent by one
//! background task that keeps at most one request in flight per partition, so retries never reorder
//! records. Idempotence (on by default, as in the Java client) numbers each batch; transactions add the
//! coordinator protocol around the same path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProduceRequest, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use runnel_storage::builder::{BatchBuilder, Record};
use tokio::sync::{oneshot, Notify};

use crate::cluster::{Cluster, CoordinatorType};
use crate::error::{check, ClientError, Result};
use crate::partitioner::{partition_for_key, Xorshift};
use crate::TopicPartition;

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

/// A header as the batch builder takes it.
type Header<'a> = (&'a str, Option<&'a [u8]>);

struct PendingRecord {
    record: ProducerRecord,
    timestamp: i64,
    tx: oneshot::Sender<Result<RecordMetadata>>,
}

struct Accumulating {
    records: Vec<PendingRecord>,
    bytes: usize,
    since: Instant,
}

/// A batch encoded once, with its sequence, so a retry sends the same bytes.
struct Sealed {
    tp: TopicPartition,
    bytes: Bytes,
    waiters: Vec<(oneshot::Sender<Result<RecordMetadata>>, i64)>,
    deadline: Instant,
}

#[derive(Default)]
struct TxnState {
    open: bool,
    partitions: HashSet<TopicPartition>,
    groups: HashSet<String>,
    /// The first failure inside the transaction: it can then only be aborted.
    failed: Option<String>,
}

/// How many record bytes may wait unsent before `send` waits for room (the Java client's buffer.memory).
const BUFFER_MEMORY: usize = 32 * 1024 * 1024;

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

fn approx_size(r: &ProducerRecord) -> usize {
    24 + r.key.as_ref().map_or(0, |k| k.len())
        + r.value.as_ref().map_or(0, |v| v.len())
        + r.headers
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, |v| v.len()) + 4)
            .sum::<usize>()
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
        // Back-pressure: wait while the buffer is full, as the Java client blocks in send.
        loop {
            let room = self.inner.space.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if self.inner.lock().queued_bytes < BUFFER_MEMORY {
                break;
            }
            self.inner.wake.notify_one();
            room.await;
        }
        let (tx, rx) = oneshot::channel();
        let full = {
            let mut s = self.inner.lock();
            if s.fenced {
                return Err(ClientError::Fenced);
            }
            if self.inner.config.transactional_id.is_some() && !s.txn.open {
                return Err(ClientError::Invalid(
                    "send outside a transaction: call begin_transaction first".into(),
                ));
            }
            let partition = match (record.partition, &record.key) {
                (Some(p), _) => {
                    if p < 0 || p as usize >= partitions {
                        return Err(ClientError::Invalid(format!(
                            "partition {p} of {} does not exist ({partitions} partitions)",
                            record.topic
                        )));
                    }
                    p
                }
                (None, Some(k)) => partition_for_key(k, partitions),
                (None, None) => {
                    let pick = (s.rng.next_u64() % partitions.max(1) as u64) as i32;
                    *s.sticky.entry(record.topic.clone()).or_insert(pick)
                }
            };
            let size = approx_size(&record);
            let timestamp = record.timestamp.unwrap_or_else(runnel_storage::now_ms);
            let tp = (record.topic.clone(), partition);
            // A batch never grows past batch.size: a full one waits in line and a new one starts.
            if s.batches.get(&tp).is_some_and(|b| {
                !b.records.is_empty() && b.bytes + size > self.inner.config.batch_size
            }) {
                if let Some(b) = s.batches.remove(&tp) {
                    s.full.push_back((tp.clone(), b));
                }
            }
            s.queued_bytes += size;
            let batch = s.batches.entry(tp.clone()).or_insert_with(|| Accumulating {
                records: Vec::new(),
                bytes: 0,
                since: Instant::now(),
            });
            batch.records.push(PendingRecord {
                record,
                timestamp,
                tx,
            });
            batch.bytes += size;
            let full = batch.bytes >= self.inner.config.batch_size;
            if full && record_key_is_none(&batch.records) {
                // Sticky partitioning moves on once a batch for a keyless record is full.
                s.sticky.remove(&tp.0);
            }
            full
        };
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

    // ---- transactions ----------------------------------------------------------------------------

    fn txn_id(&self) -> Result<String> {
        self.inner
            .config
            .transactional_id
            .clone()
            .ok_or_else(|| ClientError::Invalid("the producer has no transactional.id".into()))
    }

    /// InitProducerId with the transactional id: fences older instances and aborts what they left open.
    pub async fn init_transactions(&self) -> Result<()> {
        let id = self.txn_id()?;
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id.clone()))))
            .with_transaction_timeout_ms(self.inner.config.transaction_timeout_ms)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        let resp = self
            .inner
            .retry_txn(&id, |c| {
                let req = req.clone();
                async move {
                    c.call(&req)
                        .await
                        .map(|r| (r.error_code, (r.producer_id.0, r.producer_epoch)))
                }
            })
            .await?;
        let mut s = self.inner.lock();
        s.producer_id = resp.0;
        s.epoch = resp.1;
        s.sequences.clear();
        s.fenced = false;
        Ok(())
    }

    pub fn begin_transaction(&self) -> Result<()> {
        self.txn_id()?;
        let mut s = self.inner.lock();
        if s.txn.open {
            return Err(ClientError::Invalid("a transaction is already open".into()));
        }
        s.txn = TxnState {
            open: true,
            ..TxnState::default()
        };
        Ok(())
    }

    /// Adds consumed offsets to the transaction (AddOffsetsToTxn, then TxnOffsetCommit to the group).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[(String, i32, i64)],
        group: &crate::consumer::GroupMetadata,
    ) -> Result<()> {
        let id = self.txn_id()?;
        let (pid, epoch) = {
            let s = self.inner.lock();
            if !s.txn.open {
                return Err(ClientError::Invalid("no open transaction".into()));
            }
            (s.producer_id, s.epoch)
        };
        let req = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id.clone())))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())));
        self.inner
            .retry_txn(&id, |c| {
                let req = req.clone();
                async move { c.call(&req).await.map(|r| (r.error_code, ())) }
            })
            .await?;
        self.inner.lock().txn.groups.insert(group.group_id.clone());
        let mut by_topic: Vec<TxnOffsetCommitRequestTopic> = Vec::new();
        for (t, p, o) in offsets {
            let part = TxnOffsetCommitRequestPartition::default()
                .with_partition_index(*p)
                .with_committed_offset(*o)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str("")));
            match by_topic.iter_mut().find(|x| x.name.as_str() == t) {
                Some(x) => x.partitions.push(part),
                None => by_topic.push(
                    TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.clone())))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let commit = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
            .with_group_id(GroupId(StrBytes::from_string(group.group_id.clone())))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_generation_id(group.generation)
            .with_member_id(StrBytes::from_string(group.member_id.clone()))
            .with_group_instance_id(group.instance_id.clone().map(StrBytes::from_string))
            .with_topics(by_topic);
        let mut attempt = 0;
        loop {
            let conn = self
                .inner
                .cluster
                .coordinator(&group.group_id, CoordinatorType::Group)
                .await?;
            let resp = conn.call(&commit).await?;
            let code = resp
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|p| p.error_code)
                .find(|c| *c != 0)
                .unwrap_or(0);
            if code == 0 {
                return Ok(());
            }
            let err = self
                .inner
                .map_fenced(ClientError::kafka("TxnOffsetCommit", code));
            attempt += 1;
            if !err.is_retriable() || attempt > self.inner.cluster.config.retries {
                return Err(err);
            }
            tokio::time::sleep(self.inner.cluster.config.retry_backoff).await;
        }
    }

    pub async fn commit_transaction(&self) -> Result<()> {
        self.flush().await?;
        if let Some(reason) = self.inner.lock().txn.failed.clone() {
            return Err(ClientError::Invalid(format!(
                "the transaction failed and must be aborted: {reason}"
            )));
        }
        self.end_transaction(true).await
    }

    pub async fn abort_transaction(&self) -> Result<()> {
        {
            let mut s = self.inner.lock();
            let mut dropped: Vec<Accumulating> = s.batches.drain().map(|(_, b)| b).collect();
            dropped.extend(s.full.drain(..).map(|(_, b)| b));
            s.queued_bytes = 0;
            for b in dropped {
                for r in b.records {
                    let _ = r.tx.send(Err(ClientError::Invalid(
                        "the transaction was aborted".into(),
                    )));
                }
            }
        }
        self.flush().await?;
        self.end_transaction(false).await
    }

    async fn end_transaction(&self, commit: bool) -> Result<()> {
        let id = self.txn_id()?;
        let (pid, epoch, touched) = {
            let s = self.inner.lock();
            if !s.txn.open {
                return Err(ClientError::Invalid("no open transaction".into()));
            }
            (
                s.producer_id,
                s.epoch,
                !s.txn.partitions.is_empty() || !s.txn.groups.is_empty(),
            )
        };
        if touched {
            let req = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id.clone())))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit);
            self.inner
                .retry_txn(&id, |c| {
                    let req = req.clone();
                    async move { c.call(&req).await.map(|r| (r.error_code, ())) }
                })
                .await?;
        }
        self.inner.lock().txn = TxnState::default();
        Ok(())
    }
}

fn record_key_is_none(records: &[PendingRecord]) -> bool {
    records
        .last()
        .is_some_and(|r| r.record.key.is_none() && r.record.partition.is_none())
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

    /// Calls the transaction coordinator, retrying retriable errors (CONCURRENT_TRANSACTIONS and the like).
    async fn retry_txn<T, F, Fut>(&self, id: &str, call: F) -> Result<T>
    where
        F: Fn(Arc<crate::connection::Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<(i16, T)>>,
    {
        // CONCURRENT_TRANSACTIONS lasts until the previous transaction's markers are written, which on some
        // brokers takes seconds: retry for as long as a request may take.
        let deadline = Instant::now() + self.cluster.config.request_timeout;
        loop {
            let conn = self
                .cluster
                .coordinator(id, CoordinatorType::Transaction)
                .await?;
            let (code, value) = call(conn).await?;
            if code == 0 {
                return Ok(value);
            }
            let err = self.map_fenced(ClientError::kafka("transaction coordinator", code));
            if !err.is_retriable() || Instant::now() >= deadline {
                return Err(err);
            }
            tokio::time::sleep(self.cluster.config.retry_backoff).await;
        }
    }

    /// The background sender: seals due batches, adds new partitions to the transaction, sends one request
    /// per broker, and settles every record's future.
    async fn run(self: Arc<Self>) {
        loop {
            let due = self.next_due();
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(due) => {}
            }
            let closing = self.closed.load(Ordering::SeqCst);
            let sealed = self.seal_ready(closing);
            self.space.notify_waiters();
            if sealed.is_empty() {
                let s = self.lock();
                if s.batches.is_empty()
                    && s.full.is_empty()
                    && s.retry.is_empty()
                    && s.in_flight == 0
                {
                    drop(s);
                    self.idle.notify_waiters();
                    if closing {
                        return;
                    }
                }
                continue;
            }
            self.send_round(sealed).await;
            let idle = {
                let s = self.lock();
                s.batches.is_empty() && s.full.is_empty() && s.retry.is_empty() && s.in_flight == 0
            };
            if idle {
                self.idle.notify_waiters();
            } else {
                self.wake.notify_one();
            }
        }
    }

    fn next_due(&self) -> Duration {
        let s = self.lock();
        if s.flush_requested || !s.retry.is_empty() || !s.full.is_empty() {
            return Duration::ZERO;
        }
        s.batches
            .values()
            .map(|b| (b.since + self.config.linger).saturating_duration_since(Instant::now()))
            .min()
            .unwrap_or(Duration::from_millis(100))
    }

    /// Takes the batches to send now (one per partition) and encodes them.
    fn seal_ready(&self, all: bool) -> Vec<Sealed> {
        let mut s = self.lock();
        let now = Instant::now();
        let mut out: Vec<Sealed> = std::mem::take(&mut s.retry);
        let mut taken: HashSet<TopicPartition> = out.iter().map(|b| b.tp.clone()).collect();
        let flush = std::mem::take(&mut s.flush_requested) || all;
        // Full batches first, oldest first, one per partition; a partition's filling batch waits behind them.
        let mut picked: Vec<(TopicPartition, Accumulating)> = Vec::new();
        let mut waiting = std::collections::VecDeque::new();
        while let Some((tp, b)) = s.full.pop_front() {
            if taken.insert(tp.clone()) {
                picked.push((tp, b));
            } else {
                waiting.push_back((tp, b));
            }
        }
        s.full = waiting;
        let behind: HashSet<TopicPartition> = s.full.iter().map(|(tp, _)| tp.clone()).collect();
        let ready: Vec<TopicPartition> = s
            .batches
            .iter()
            .filter(|(tp, b)| {
                !taken.contains(*tp)
                    && !behind.contains(*tp)
                    && (flush
                        || b.bytes >= self.config.batch_size
                        || now >= b.since + self.config.linger)
            })
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in ready {
            if let Some(b) = s.batches.remove(&tp) {
                picked.push((tp, b));
            }
        }
        let (pid, epoch) = (s.producer_id, s.epoch);
        let transactional = self.config.transactional_id.is_some();
        for (tp, batch) in picked {
            s.queued_bytes = s.queued_bytes.saturating_sub(batch.bytes);
            if s.sticky.get(&tp.0) == Some(&tp.1)
                && batch.records.iter().any(|r| r.record.key.is_none())
            {
                s.sticky.remove(&tp.0);
            }
            let base_sequence = if pid >= 0 {
                let seq = s.sequences.entry(tp.clone()).or_insert(0);
                let base = *seq;
                *seq = seq.wrapping_add(batch.records.len() as i32) & i32::MAX;
                base
            } else {
                -1
            };
            let headers: Vec<Vec<Header>> = batch
                .records
                .iter()
                .map(|r| {
                    r.record
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_deref()))
                        .collect()
                })
                .collect();
            let records: Vec<Record> = batch
                .records
                .iter()
                .zip(&headers)
                .map(|(r, h)| Record {
                    timestamp: r.timestamp,
                    key: r.record.key.as_deref(),
                    value: r.record.value.as_deref(),
                    headers: h,
                })
                .collect();
            let bytes = BatchBuilder {
                producer_id: pid,
                producer_epoch: if pid >= 0 { epoch } else { -1 },
                base_sequence,
                transactional,
                compression: self.config.compression.codec(),
                ..BatchBuilder::default()
            }
            .build(&records);
            out.push(Sealed {
                tp,
                bytes: Bytes::from(bytes),
                waiters: batch
                    .records
                    .into_iter()
                    .map(|r| (r.tx, r.timestamp))
                    .collect(),
                deadline: now + self.config.delivery_timeout,
            });
        }
        s.in_flight += out.len();
        out
    }

    async fn add_partitions(&self, sealed: &[Sealed]) -> Result<()> {
        let Some(id) = self.config.transactional_id.clone() else {
            return Ok(());
        };
        let (pid, epoch, new): (i64, i16, Vec<TopicPartition>) = {
            let s = self.lock();
            let new = sealed
                .iter()
                .map(|b| b.tp.clone())
                .filter(|tp| !s.txn.partitions.contains(tp))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            (s.producer_id, s.epoch, new)
        };
        if new.is_empty() {
            return Ok(());
        }
        let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
        for (t, p) in &new {
            match topics.iter_mut().find(|x| x.name.as_str() == t) {
                Some(x) => x.partitions.push(*p),
                None => topics.push(
                    AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(StrBytes::from_string(t.clone())))
                        .with_partitions(vec![*p]),
                ),
            }
        }
        let req = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(id.clone())))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_producer_epoch(epoch)
            .with_v3_and_below_topics(topics);
        self.retry_txn(&id, |c| {
            let req = req.clone();
            async move {
                let r = c.call(&req).await?;
                let code = r
                    .results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| t.results_by_partition.iter())
                    .map(|p| p.partition_error_code)
                    .find(|c| *c != 0)
                    .unwrap_or(r.error_code);
                Ok((code, ()))
            }
        })
        .await?;
        self.lock().txn.partitions.extend(new);
        Ok(())
    }

    fn settle(&self, b: Sealed, result: std::result::Result<(i64, i64), ClientError>) {
        let mut s = self.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        match result {
            Ok((base, log_append_time)) => {
                for (i, (tx, ts)) in b.waiters.into_iter().enumerate() {
                    let _ = tx.send(Ok(RecordMetadata {
                        topic: b.tp.0.clone(),
                        partition: b.tp.1,
                        offset: if base >= 0 { base + i as i64 } else { -1 },
                        timestamp: if log_append_time >= 0 {
                            log_append_time
                        } else {
                            ts
                        },
                    }));
                }
            }
            Err(e) if e.is_retriable() && Instant::now() < b.deadline && !s.fenced => {
                tracing::debug!(topic = %b.tp.0, partition = b.tp.1, error = %e, "retrying batch");
                s.in_flight += 1;
                s.retry.push(b);
                s.in_flight -= 1;
            }
            Err(e) => {
                if s.txn.open && s.txn.failed.is_none() {
                    s.txn.failed = Some(e.to_string());
                }
                let msg = e.to_string();
                let fenced = matches!(e, ClientError::Fenced);
                for (tx, _) in b.waiters {
                    let _ = tx.send(Err(if fenced {
                        ClientError::Fenced
                    } else {
                        ClientError::Protocol(msg.clone())
                    }));
                }
            }
        }
    }

    async fn send_round(self: &Arc<Self>, sealed: Vec<Sealed>) {
        if let Err(e) = self.add_partitions(&sealed).await {
            let e = self.map_fenced(e);
            for b in sealed {
                let err = match &e {
                    ClientError::Fenced => ClientError::Fenced,
                    other => ClientError::Protocol(other.to_string()),
                };
                self.settle(b, Err(err));
            }
            return;
        }
        // Group by leader; a partition without a known leader is retried after a metadata refresh.
        let mut by_node: HashMap<String, (Arc<crate::connection::Connection>, Vec<Sealed>)> =
            HashMap::new();
        for b in sealed {
            match self.cluster.leader(&b.tp.0, b.tp.1).await {
                Ok(conn) => by_node
                    .entry(conn.addr().to_string())
                    .or_insert_with(|| (conn, Vec::new()))
                    .1
                    .push(b),
                Err(e) => {
                    self.cluster.invalidate(&b.tp.0);
                    self.settle(b, Err(e));
                }
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (_, (conn, batches)) in by_node {
            let me = Arc::clone(self);
            tasks.spawn(async move { me.produce_to(conn, batches).await });
        }
        while tasks.join_next().await.is_some() {}
        if !self.lock().retry.is_empty() {
            tokio::time::sleep(self.cluster.config.retry_backoff).await;
        }
    }

    async fn produce_to(&self, conn: Arc<crate::connection::Connection>, batches: Vec<Sealed>) {
        let mut topics: Vec<TopicProduceData> = Vec::new();
        for b in &batches {
            let pd = PartitionProduceData::default()
                .with_index(b.tp.1)
                .with_records(Some(b.bytes.clone()));
            match topics.iter_mut().find(|t| t.name.as_str() == b.tp.0) {
                Some(t) => t.partition_data.push(pd),
                None => topics.push(
                    TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(b.tp.0.clone())))
                        .with_partition_data(vec![pd]),
                ),
            }
        }
        let req = ProduceRequest::default()
            .with_transactional_id(
                self.config
                    .transactional_id
                    .clone()
                    .map(|t| TransactionalId(StrBytes::from_string(t))),
            )
            .with_acks(self.config.acks)
            .with_timeout_ms(self.cluster.config.request_timeout.as_millis() as i32)
            .with_topic_data(topics);
        if self.config.acks == 0 {
            let r = conn.send_only(&req);
            for b in batches {
                self.settle(
                    b,
                    r.as_ref()
                        .map(|_| (-1, -1))
                        .map_err(|e| ClientError::Protocol(e.to_string())),
                );
            }
            return;
        }
        match conn.call(&req).await {
            Err(e) => {
                for b in batches {
                    let err = match &e {
                        ClientError::Connection { addr, reason } => ClientError::Connection {
                            addr: addr.clone(),
                            reason: reason.clone(),
                        },
                        ClientError::Timeout { what, ms } => ClientError::Timeout {
                            what: what.clone(),
                            ms: *ms,
                        },
                        other => ClientError::Protocol(other.to_string()),
                    };
                    self.settle(b, Err(err));
                }
            }
            Ok(resp) => {
                for b in batches {
                    let answer = resp
                        .responses
                        .iter()
                        .find(|t| t.name.as_str() == b.tp.0)
                        .and_then(|t| t.partition_responses.iter().find(|p| p.index == b.tp.1));
                    let result = match answer {
                        None => Err(ClientError::Protocol(format!(
                            "no answer for {}-{}",
                            b.tp.0, b.tp.1
                        ))),
                        Some(p) if p.error_code == 0 => Ok((p.base_offset, p.log_append_time_ms)),
                        Some(p) => {
                            let e = ClientError::kafka(
                                format!("produce to {}-{}", b.tp.0, b.tp.1),
                                p.error_code,
                            );
                            if matches!(p.error_code, 6 | 3) {
                                self.cluster.invalidate(&b.tp.0);
                            }
                            Err(self.map_fenced(e))
                        }
                    };
                    self.settle(b, result);
                }
            }
        }
    }
}
