//! The transaction coordinator: each transactional id's producer id and epoch, its state, the partitions and
//! groups its current transaction touched, and its timeout.
//!
//! Ending a transaction is two-phase, as in Kafka: [`TxnCoordinator::prepare_end`] records PrepareCommit or
//! PrepareAbort durably and hands back the work (markers to write, group offsets to settle); the broker does
//! it and calls [`TxnCoordinator::finish_end`], which records CompleteCommit or CompleteAbort. A broker that
//! dies in between finds the Prepare state at start and finishes the work again (markers are idempotent for
//! readers). Expired transactions are aborted with a bumped epoch, which fences the producer that left them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use kafka_protocol::error::ResponseError;
use runnel_storage::StorageError;
use serde::{Deserialize, Serialize};

use super::store::{self, TxnStore};
use crate::cluster::coordinator_store::{Claimed, CoordinatorStore, KeyKind};
use crate::coordinator_ownership::KeyHolder;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnStatus {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnStatus {
    /// The name Kafka's admin APIs use.
    pub fn name(self) -> &'static str {
        match self {
            TxnStatus::Empty => "Empty",
            TxnStatus::Ongoing => "Ongoing",
            TxnStatus::PrepareCommit => "PrepareCommit",
            TxnStatus::PrepareAbort => "PrepareAbort",
            TxnStatus::CompleteCommit => "CompleteCommit",
            TxnStatus::CompleteAbort => "CompleteAbort",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnStatus,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    /// When the current transaction began (first partition or group added), for the timeout.
    pub start_ms: i64,
    pub update_ms: i64,
}

/// The work of ending a transaction, done by the broker between prepare and finish.
#[derive(Debug, Clone)]
pub struct EndPlan {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The epoch the markers carry (bumped when the coordinator aborts on its own, to fence the producer).
    pub marker_epoch: i16,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
    pub groups: Vec<String>,
}

/// The answer to InitProducerId: an id and epoch, or an aborted transaction to settle first.
pub enum InitOutcome {
    Ready {
        producer_id: i64,
        producer_epoch: i16,
    },
    AbortFirst(EndPlan),
}

pub struct TxnSettings {
    /// transaction.max.timeout.ms
    pub max_timeout_ms: i32,
}

pub struct TxnCoordinator {
    inner: Mutex<Inner>,
    settings: TxnSettings,
}

struct Inner {
    txns: BTreeMap<String, TxnMeta>,
    store: TxnStore,
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

impl Inner {
    fn save(&mut self, id: &str, meta: TxnMeta) -> Result<(), i16> {
        if let Err(e) = self.store.write(id, &meta) {
            tracing::error!(transactional_id = id, error = %e, "cannot persist transaction state");
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        self.txns.insert(id.to_string(), meta);
        Ok(())
    }
}

impl TxnCoordinator {
    pub fn open(
        data_dir: &std::path::Path,
        clean: bool,
        settings: TxnSettings,
    ) -> Result<Self, StorageError> {
        let (store, txns) = TxnStore::open(data_dir, clean)?;
        tracing::info!(
            transactional_ids = txns.len(),
            "transaction coordinator loaded"
        );
        Ok(TxnCoordinator {
            inner: Mutex::new(Inner { txns, store }),
            settings,
        })
    }

    /// A coordinator for a cluster: transactional ids are loaded as this broker claims them.
    pub fn open_shared(records: Arc<CoordinatorStore>, settings: TxnSettings) -> Self {
        TxnCoordinator {
            inner: Mutex::new(Inner {
                txns: BTreeMap::new(),
                store: TxnStore::shared(records),
            }),
            settings,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// InitProducerId with a transactional id. `new_id` allocates a producer id when one is needed.
    pub fn init(
        &self,
        id: &str,
        timeout_ms: i32,
        new_id: impl FnOnce() -> Option<i64>,
    ) -> Result<InitOutcome, i16> {
        if timeout_ms <= 0 || timeout_ms > self.settings.max_timeout_ms {
            return Err(code(ResponseError::InvalidTransactionTimeout));
        }
        let now = runnel_storage::now_ms();
        let mut inner = self.lock();
        let current = inner.txns.get(id).cloned();
        let meta = match current {
            None => {
                let pid = new_id().ok_or(code(ResponseError::CoordinatorNotAvailable))?;
                TxnMeta {
                    producer_id: pid,
                    producer_epoch: 0,
                    timeout_ms,
                    state: TxnStatus::Empty,
                    partitions: BTreeSet::new(),
                    groups: BTreeSet::new(),
                    start_ms: -1,
                    update_ms: now,
                }
            }
            Some(m) if matches!(m.state, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort) => {
                return Err(code(ResponseError::ConcurrentTransactions));
            }
            Some(m) if m.state == TxnStatus::Ongoing => {
                // A new incarnation of the producer: abort what the old one left, fencing it with a new epoch.
                let mut m = m;
                m.producer_epoch = m.producer_epoch.saturating_add(1);
                m.state = TxnStatus::PrepareAbort;
                m.timeout_ms = timeout_ms;
                m.update_ms = now;
                let plan = plan_of(id, &m, false);
                inner.save(id, m)?;
                return Ok(InitOutcome::AbortFirst(plan));
            }
            Some(mut m) => {
                if m.producer_epoch >= i16::MAX - 1 {
                    m.producer_id = new_id().ok_or(code(ResponseError::CoordinatorNotAvailable))?;
                    m.producer_epoch = 0;
                } else {
                    m.producer_epoch += 1;
                }
                m.state = TxnStatus::Empty;
                m.partitions.clear();
                m.groups.clear();
                m.timeout_ms = timeout_ms;
                m.start_ms = -1;
                m.update_ms = now;
                m
            }
        };
        let (producer_id, producer_epoch) = (meta.producer_id, meta.producer_epoch);
        inner.save(id, meta)?;
        Ok(InitOutcome::Ready {
            producer_id,
            producer_epoch,
        })
    }

    /// After an abort forced by InitProducerId: the producer gets the fencing epoch and an empty state.
    pub fn after_forced_abort(&self, id: &str) -> Result<(i64, i16), i16> {
        let mut inner = self.lock();
        let mut m = inner
            .txns
            .get(id)
            .cloned()
            .ok_or(code(ResponseError::CoordinatorNotAvailable))?;
        m.state = TxnStatus::Empty;
        m.partitions.clear();
        m.groups.clear();
        m.start_ms = -1;
        let out = (m.producer_id, m.producer_epoch);
        inner.save(id, m)?;
        Ok(out)
    }

    /// The transactional id's metadata, if the request's producer id and epoch are its current ones.
    fn owned_by<'a>(
        inner: &'a Inner,
        id: &str,
        pid: i64,
        epoch: i16,
        fenced: i16,
    ) -> Result<&'a TxnMeta, i16> {
        let m = inner
            .txns
            .get(id)
            .ok_or(code(ResponseError::InvalidProducerIdMapping))?;
        if m.producer_id != pid {
            return Err(code(ResponseError::InvalidProducerIdMapping));
        }
        if m.producer_epoch != epoch {
            return Err(fenced);
        }
        Ok(m)
    }

    /// As [`Self::owned_by`], and the transaction is not being ended.
    fn check(
        &self,
        inner: &Inner,
        id: &str,
        pid: i64,
        epoch: i16,
        fenced: i16,
    ) -> Result<TxnMeta, i16> {
        let m = Self::owned_by(inner, id, pid, epoch, fenced)?;
        if matches!(m.state, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort) {
            return Err(code(ResponseError::ConcurrentTransactions));
        }
        Ok(m.clone())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds to the transaction, starting it if needed.
    pub fn add(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        fenced: i16,
        partitions: &[(String, i32)],
        group: Option<&str>,
    ) -> Result<(), i16> {
        let mut inner = self.lock();
        let mut m = self.check(&inner, id, pid, epoch, fenced)?;
        let now = runnel_storage::now_ms();
        if m.state != TxnStatus::Ongoing {
            m.state = TxnStatus::Ongoing;
            m.partitions.clear();
            m.groups.clear();
            m.start_ms = now;
        }
        let before = (m.partitions.len(), m.groups.len());
        m.partitions.extend(partitions.iter().cloned());
        if let Some(g) = group {
            m.groups.insert(g.to_string());
        }
        if (m.partitions.len(), m.groups.len()) == before
            && inner
                .txns
                .get(id)
                .is_some_and(|c| c.state == TxnStatus::Ongoing)
        {
            return Ok(());
        }
        m.update_ms = now;
        inner.save(id, m)
    }

    /// Whether the transaction holds the partition (AddPartitionsToTxn v4 verify_only).
    pub fn contains(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        partition: &(String, i32),
    ) -> Result<bool, i16> {
        let inner = self.lock();
        let m = self.check(&inner, id, pid, epoch, code(ResponseError::ProducerFenced))?;
        Ok(m.state == TxnStatus::Ongoing && m.partitions.contains(partition))
    }

    /// Validates a transactional offset commit's producer (TxnOffsetCommit).
    pub fn check_producer(&self, id: &str, pid: i64, epoch: i16, fenced: i16) -> Result<(), i16> {
        let inner = self.lock();
        self.check(&inner, id, pid, epoch, fenced).map(|_| ())
    }

    /// EndTxn, first phase. Ok(None) when there is nothing to do (a retried end that already completed).
    pub fn prepare_end(
        &self,
        id: &str,
        pid: i64,
        epoch: i16,
        fenced: i16,
        commit: bool,
    ) -> Result<Option<EndPlan>, i16> {
        let mut inner = self.lock();
        let m = Self::owned_by(&inner, id, pid, epoch, fenced)?;
        match (m.state, commit) {
            (TxnStatus::Ongoing, _) => {}
            (TxnStatus::CompleteCommit, true) | (TxnStatus::CompleteAbort, false) => {
                return Ok(None)
            }
            (TxnStatus::PrepareCommit, true) | (TxnStatus::PrepareAbort, false) => {
                return Err(code(ResponseError::ConcurrentTransactions))
            }
            _ => return Err(code(ResponseError::InvalidTxnState)),
        }
        let mut m = m.clone();
        m.state = if commit {
            TxnStatus::PrepareCommit
        } else {
            TxnStatus::PrepareAbort
        };
        m.update_ms = runnel_storage::now_ms();
        let plan = plan_of(id, &m, commit);
        inner.save(id, m)?;
        Ok(Some(plan))
    }

    /// EndTxn, second phase: the markers are written and the group offsets settled.
    pub fn finish_end(&self, plan: &EndPlan) -> Result<(), i16> {
        let mut inner = self.lock();
        let Some(mut m) = inner.txns.get(&plan.transactional_id).cloned() else {
            return Ok(());
        };
        m.state = if plan.commit {
            TxnStatus::CompleteCommit
        } else {
            TxnStatus::CompleteAbort
        };
        m.partitions.clear();
        m.groups.clear();
        m.start_ms = -1;
        m.update_ms = runnel_storage::now_ms();
        inner.save(&plan.transactional_id, m)
    }

    /// Transactions open longer than their timeout, moved to PrepareAbort with a bumped epoch.
    pub fn expire(&self) -> Vec<EndPlan> {
        let now = runnel_storage::now_ms();
        let mut inner = self.lock();
        let expired: Vec<(String, TxnMeta)> = inner
            .txns
            .iter()
            .filter(|(_, m)| {
                m.state == TxnStatus::Ongoing
                    && m.start_ms >= 0
                    && now - m.start_ms > i64::from(m.timeout_ms)
            })
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect();
        let mut plans = Vec::new();
        for (id, mut m) in expired {
            tracing::info!(transactional_id = %id, producer_id = m.producer_id, "aborting transaction past its timeout");
            m.producer_epoch = m.producer_epoch.saturating_add(1);
            m.state = TxnStatus::PrepareAbort;
            m.update_ms = now;
            let plan = plan_of(&id, &m, false);
            if inner.save(&id, m).is_ok() {
                plans.push(plan);
            }
        }
        plans
    }

    /// Transactions a previous run left half-ended, to finish at start.
    pub fn unfinished(&self) -> Vec<EndPlan> {
        let inner = self.lock();
        inner
            .txns
            .iter()
            .filter_map(|(id, m)| match m.state {
                TxnStatus::PrepareCommit => Some(plan_of(id, m, true)),
                TxnStatus::PrepareAbort => Some(plan_of(id, m, false)),
                _ => None,
            })
            .collect()
    }

    /// The work left half-done on one transactional id (found when a cluster broker claims it).
    pub fn unfinished_of(&self, id: &str) -> Option<EndPlan> {
        let inner = self.lock();
        inner.txns.get(id).and_then(|m| match m.state {
            TxnStatus::PrepareCommit => Some(plan_of(id, m, true)),
            TxnStatus::PrepareAbort => Some(plan_of(id, m, false)),
            _ => None,
        })
    }

    /// Checks a TxnOffsetCommit's producer against metadata read from the database (in a cluster the
    /// transactional id is usually held by another broker).
    pub fn check_producer_of(
        meta: Option<&TxnMeta>,
        pid: i64,
        epoch: i16,
        fenced: i16,
    ) -> Result<(), i16> {
        let m = meta.ok_or(code(ResponseError::InvalidProducerIdMapping))?;
        if m.producer_id != pid {
            return Err(code(ResponseError::InvalidProducerIdMapping));
        }
        if m.producer_epoch != epoch {
            return Err(fenced);
        }
        if matches!(m.state, TxnStatus::PrepareCommit | TxnStatus::PrepareAbort) {
            return Err(code(ResponseError::ConcurrentTransactions));
        }
        Ok(())
    }

    pub fn describe(&self, id: &str) -> Option<TxnMeta> {
        self.lock().txns.get(id).cloned()
    }

    pub fn list(&self) -> Vec<(String, TxnMeta)> {
        self.lock()
            .txns
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn with_log<T>(&self, f: impl FnOnce(&mut runnel_storage::PartitionLog) -> T) -> Option<T> {
        let mut inner = self.lock();
        inner.store.log_mut().map(f)
    }
}

fn plan_of(id: &str, m: &TxnMeta, commit: bool) -> EndPlan {
    EndPlan {
        transactional_id: id.to_string(),
        producer_id: m.producer_id,
        marker_epoch: m.producer_epoch,
        commit,
        partitions: m.partitions.iter().cloned().collect(),
        groups: m.groups.iter().cloned().collect(),
    }
}

impl KeyHolder for TxnCoordinator {
    const KIND: KeyKind = KeyKind::Transaction;

    fn epoch(&self, id: &str) -> Option<i64> {
        match &self.lock().store {
            TxnStore::Shared(s) => s.epoch(id),
            TxnStore::Local(_) => None,
        }
    }

    fn install(&self, id: &str, claimed: Claimed) -> Result<(), String> {
        let meta = store::load_records(&claimed.records)?;
        let mut inner = self.lock();
        let TxnStore::Shared(shared) = &mut inner.store else {
            return Ok(());
        };
        shared.hold(id, claimed.epoch);
        match meta {
            Some(m) => inner.txns.insert(id.to_string(), m),
            None => inner.txns.remove(id),
        };
        Ok(())
    }

    fn unload(&self, id: &str, epoch: Option<i64>) {
        let mut inner = self.lock();
        let TxnStore::Shared(shared) = &mut inner.store else {
            return;
        };
        if shared.release(id, epoch) {
            inner.txns.remove(id);
        }
    }

    fn held(&self) -> Vec<(String, i64)> {
        match &self.lock().store {
            TxnStore::Shared(s) => s.held(),
            TxnStore::Local(_) => Vec::new(),
        }
    }
}
