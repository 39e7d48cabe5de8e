//! The transactional producer's state machine: `init_transactions` (FindCoordinator, then InitProducerId
//! with the transactional id), `begin_transaction`, adding partitions (AddPartitionsToTxn, done by the
//! sender before a batch for a new partition goes out), `send_offsets_to_transaction` (AddOffsetsToTxn,
//! then TxnOffsetCommit to the group coordinator) and `commit_transaction`/`abort_transaction` (EndTxn).
//! It is separate because it is a protocol of its own with the transaction coordinator, layered on the
//! batching and sending path rather than part of it; a producer without a transactional.id never enters it.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, ProducerId, TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::accumulator::Accumulating;
use super::sender::Sealed;
use super::{Inner, Producer};
use crate::cluster::CoordinatorType;
use crate::error::{ClientError, Result};
use crate::TopicPartition;

#[derive(Default)]
pub(super) struct TxnState {
    pub(super) open: bool,
    partitions: HashSet<TopicPartition>,
    groups: HashSet<String>,
    /// The first failure inside the transaction: it can then only be aborted.
    pub(super) failed: Option<String>,
}

impl Producer {
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

impl Inner {
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

    pub(super) async fn add_partitions(&self, sealed: &[Sealed]) -> Result<()> {
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
                // The refused partitions carry the reason; the others only say OPERATION_NOT_ATTEMPTED.
                let codes: Vec<i16> = r
                    .results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| t.results_by_partition.iter())
                    .map(|p| p.partition_error_code)
                    .filter(|c| *c != 0)
                    .collect();
                let not_attempted = ResponseError::OperationNotAttempted.code();
                let code = codes
                    .iter()
                    .copied()
                    .find(|c| *c != not_attempted)
                    .or(codes.first().copied())
                    .unwrap_or(r.error_code);
                Ok((code, ()))
            }
        })
        .await?;
        self.lock().txn.partitions.extend(new);
        Ok(())
    }
}
