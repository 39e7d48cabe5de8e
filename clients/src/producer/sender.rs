//! The background sender: one task per producer that seals due batches (assigning idempotent sequence
//! numbers and encoding each batch once, so a retry resends the same bytes), adds new partitions to the open
//! transaction, sends one Produce request per leader, and settles every record's future — retrying
//! retriable failures until `delivery.timeout.ms`, with at most one batch in flight per partition so
//! retries never reorder records. It is separate because it is the only code that runs on the background
//! task rather than in the caller's `send`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use runnel_storage::builder::{BatchBuilder, Record};
use tokio::sync::oneshot;

use super::{Inner, RecordMetadata};
use crate::error::{ClientError, Result};
use crate::TopicPartition;

/// A header as the batch builder takes it.
type Header<'a> = (&'a str, Option<&'a [u8]>);

/// A batch encoded once, with its sequence, so a retry sends the same bytes.
pub(super) struct Sealed {
    pub(super) tp: TopicPartition,
    /// The idempotent sequence of its first record (-1 without a producer id), given back if the batch
    /// is dropped before any broker saw it, so the partition's next batch does not leave a gap.
    base_sequence: i32,
    bytes: Bytes,
    waiters: Vec<(oneshot::Sender<Result<RecordMetadata>>, i64)>,
    deadline: Instant,
}

impl Inner {
    /// The background sender: seals due batches, adds new partitions to the transaction, sends one request
    /// per broker, and settles every record's future.
    pub(super) async fn run(self: Arc<Self>) {
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

    /// Takes the batches to send now (one per partition) and encodes them.
    fn seal_ready(&self, all: bool) -> Vec<Sealed> {
        let mut s = self.lock();
        let now = Instant::now();
        let mut out: Vec<Sealed> = std::mem::take(&mut s.retry);
        let taken: HashSet<TopicPartition> = out.iter().map(|b| b.tp.clone()).collect();
        let flush = std::mem::take(&mut s.flush_requested) || all;
        let picked = self.take_ready(&mut s, taken, flush, now);
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
                base_sequence,
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

    /// Fails a batch no broker has seen: its sequence numbers go back to the partition (a batch is the only
    /// one in flight for its partition, so nothing was sealed after it).
    fn drop_unsent(&self, b: Sealed, err: ClientError) {
        if b.base_sequence >= 0 && !(err.is_retriable() && Instant::now() < b.deadline) {
            self.lock().sequences.insert(b.tp.clone(), b.base_sequence);
        }
        self.settle(b, Err(err));
    }

    async fn send_round(self: &Arc<Self>, sealed: Vec<Sealed>) {
        if let Err(e) = self.add_partitions(&sealed).await {
            let e = self.map_fenced(e);
            for b in sealed {
                let err = match &e {
                    ClientError::Fenced => ClientError::Fenced,
                    other => ClientError::Protocol(other.to_string()),
                };
                self.drop_unsent(b, err);
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
                    self.drop_unsent(b, e);
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
