//! The broker's shared state: configuration, the topic catalog, open partition logs and the wake-up signal
//! that long-polling fetches wait on. Handlers get a `&Broker`; topic administration lives in `topics.rs`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use runnel_storage::{Catalog, LogConfig, PartitionLog, StorageError, TopicMeta};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::config::BrokerConfig;
use crate::groups::GroupCoordinator;
use crate::producer_ids::ProducerIdAllocator;
use crate::transactions::{EndPlan, TxnCoordinator};

const CLEAN_SHUTDOWN_MARKER: &str = ".clean-shutdown";
const CLUSTER_FILE: &str = "cluster.json";

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Acls(#[from] crate::security::acl_store::AclStoreError),
    #[error(transparent)]
    MetadataFile(#[from] crate::metadata_file::MetadataFileError),
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub use crate::partition::Partition;

#[derive(Serialize, Deserialize)]
struct ClusterFile {
    cluster_id: String,
}

pub struct Broker {
    /// The static config (flags, file, environment); [`Broker::effective_config`] adds the dynamic layers.
    pub config: BrokerConfig,
    pub dynamic: crate::dynamic_config::DynamicConfigs,
    pub cluster_id: String,
    pub node_id: i32,
    pub advertised_host: String,
    pub advertised_port: i32,
    /// What in-process callers (co-located jobs) come in on.
    pub internal_listener: Arc<crate::security::Listener>,
    /// The principal hosted jobs act as (`jobs.principal`), subject to ACLs like any client.
    pub job_principal: Arc<crate::security::Principal>,
    pub credentials: crate::security::credentials::CredentialStore,
    pub acls: crate::security::acl_store::AclStore,
    pub quotas: crate::quotas::QuotaManager,
    pub(crate) catalog: Mutex<Catalog>,
    pub(crate) partitions: RwLock<HashMap<String, Vec<Arc<Partition>>>>,
    /// Woken after every append (in a cluster: every commit heard from any broker), so waiting fetches
    /// re-check their partitions.
    pub appended: Arc<Notify>,
    /// Cluster mode: this broker's membership and the shared log; None on a single node.
    pub cluster: Option<Arc<crate::cluster::ClusterNode>>,
    pub producer_ids: ProducerIdAllocator,
    pub groups: GroupCoordinator,
    pub txns: TxnCoordinator,
    pub metrics: crate::metrics::BrokerMetrics,
}

pub type TopicPartitions = Vec<Arc<Partition>>;

pub(crate) fn partition_dir(data_dir: &Path, topic: &str, index: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{index}"))
}

impl Broker {
    /// Opens the data directory: the catalog, every partition log (recovering them if the last stop was not
    /// clean), the producer-id allocator.
    pub fn open(
        config: BrokerConfig,
        advertised_host: String,
        advertised_port: i32,
    ) -> Result<Self, BrokerError> {
        let dynamic = crate::dynamic_config::DynamicConfigs::open(&config.data_dir)?;
        Self::open_with(config, dynamic, advertised_host, advertised_port, None)
    }

    /// [`Broker::open`] with the dynamic configs already read (the listeners are made from them first),
    /// and in a cluster the node already joined: partitions are then the shared log's, and the topic
    /// catalog a mirror of the database's (filled by [`Broker::sync_topics`]).
    pub fn open_with(
        config: BrokerConfig,
        dynamic: crate::dynamic_config::DynamicConfigs,
        advertised_host: String,
        advertised_port: i32,
        cluster: Option<Arc<crate::cluster::ClusterNode>>,
    ) -> Result<Self, BrokerError> {
        let dir = config.data_dir.clone();
        let io_err = |source| BrokerError::DataDir {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        if clean {
            std::fs::remove_file(&marker).map_err(io_err)?;
        }
        let cluster_id = match &cluster {
            Some(node) => node.cluster_id.clone(),
            None => load_cluster_id(&dir)?,
        };
        let catalog = match cluster {
            Some(_) => Catalog::mirror(Vec::new()),
            None => Catalog::open(&dir)?,
        };
        let now = runnel_storage::now_ms();
        let defaults = dynamic.overlay(&config).topic_defaults();
        let mut partitions = HashMap::new();
        for topic in catalog.topics() {
            let cfg = LogConfig::resolve(&topic.configs, &defaults);
            let mut logs = Vec::new();
            for p in 0..topic.partitions {
                let log = PartitionLog::open(
                    &partition_dir(&dir, &topic.name, p),
                    cfg.clone(),
                    clean,
                    now,
                )?;
                logs.push(Arc::new(Partition::local(topic.name.clone(), p, log)));
            }
            partitions.insert(topic.name.clone(), logs);
        }
        tracing::info!(dir = %dir.display(), topics = partitions.len(), clean, "data directory opened");
        let producer_ids = match &cluster {
            Some(node) => ProducerIdAllocator::cluster(node.db.url().to_string()),
            None => ProducerIdAllocator::open(&dir)?,
        };
        // In a cluster groups and transactional ids live in the metadata database, claimed one at a time.
        let (groups, txns) = match &cluster {
            Some(node) => (
                GroupCoordinator::open_shared(
                    Arc::clone(&node.coordinators),
                    config.group_settings(),
                ),
                TxnCoordinator::open_shared(Arc::clone(&node.coordinators), config.txn_settings()),
            ),
            None => (
                GroupCoordinator::open(&dir, clean, config.group_settings())?,
                TxnCoordinator::open(&dir, clean, config.txn_settings())?,
            ),
        };
        let credentials = crate::security::credentials::CredentialStore::open(&dir)?;
        let job_principal = Arc::new(config.job_principal());
        let acls = crate::security::acl_store::AclStore::open(
            &dir,
            config.get("authorizer.class.name").unwrap_or_default(),
            config.get("super.users").unwrap_or_default(),
            config
                .get("allow.everyone.if.no.acl.found")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        )?;
        let quotas = crate::quotas::QuotaManager::new(
            crate::quotas::store::QuotaStore::open(&dir)?,
            config.quota_windows(),
        );
        Ok(Broker {
            dynamic,
            quotas,
            internal_listener: crate::security::Listener::internal(
                advertised_host.clone(),
                advertised_port,
            ),
            job_principal,
            credentials,
            acls,
            groups,
            txns,
            node_id: config.node_id(),
            config,
            cluster_id,
            advertised_host,
            advertised_port,
            catalog: Mutex::new(catalog),
            partitions: RwLock::new(partitions),
            appended: cluster
                .as_ref()
                .map_or_else(|| Arc::new(Notify::new()), |n| Arc::clone(&n.appended)),
            cluster,
            producer_ids,
            metrics: crate::metrics::BrokerMetrics::default(),
        })
    }

    pub(crate) fn catalog(&self) -> MutexGuard<'_, Catalog> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn topic_meta(&self, name: &str) -> Option<TopicMeta> {
        self.catalog().get(name).cloned()
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<TopicMeta> {
        self.catalog().by_id(id).cloned()
    }

    pub fn all_topics(&self) -> Vec<TopicMeta> {
        self.catalog().topics().cloned().collect()
    }

    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.get(topic)
            .and_then(|ps| usize::try_from(index).ok().and_then(|i| ps.get(i)))
            .cloned()
    }

    pub fn topic_partitions(&self, topic: &str) -> Option<TopicPartitions> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.get(topic).cloned()
    }

    pub(crate) fn every_partition(&self) -> Vec<Arc<Partition>> {
        let map = self.partitions.read().unwrap_or_else(|p| p.into_inner());
        map.values().flatten().cloned().collect()
    }

    /// The effective log config of a topic given its overrides (over the dynamic and static defaults).
    pub fn log_config(&self, overrides: &std::collections::BTreeMap<String, String>) -> LogConfig {
        LogConfig::resolve(overrides, &self.effective_config().topic_defaults())
    }

    /// Runs `work` on the coordinators' own logs (groups, transactions); false when either failed.
    fn on_internal_logs(
        &self,
        what: &str,
        work: impl Fn(&mut PartitionLog) -> Result<(), StorageError>,
    ) -> bool {
        let results = [
            ("group store", self.groups.with_log(&work).unwrap_or(Ok(()))),
            (
                "transaction store",
                self.txns.with_log(&work).unwrap_or(Ok(())),
            ),
        ];
        let mut ok = true;
        for (store, r) in results {
            if let Err(e) = r {
                ok = false;
                tracing::error!(error = %e, "{store} {what} failed");
            }
        }
        ok
    }

    /// Periodic work: `flush.ms`, retention, checkpoints. Runs on a blocking thread.
    pub fn flush_due(&self) {
        let now = runnel_storage::now_ms();
        self.on_internal_logs("flush", |l| l.flush_if_due(now));
        for p in self.every_partition() {
            if let Err(e) = p.local_log().map_or(Ok(()), |mut l| l.flush_if_due(now)) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
            }
        }
    }

    pub fn apply_retention(&self) {
        let now = runnel_storage::now_ms();
        for p in self.every_partition() {
            match p.local_log().map_or(Ok(0), |mut l| l.apply_retention(now)) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(topic = %p.topic, partition = p.index, segments = n, "retention deleted segments")
                }
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed")
                }
            }
        }
    }

    /// Compacts the closed segments of `cleanup.policy=compact` topics.
    pub fn compact(&self) {
        let now = runnel_storage::now_ms();
        self.on_internal_logs("compaction", |l| l.compact(now).map(|_| ()));
        for p in self.every_partition() {
            match p
                .local_log()
                .map_or(Ok(Default::default()), |mut l| l.compact(now))
            {
                Ok(s) if s.segments_rewritten > 0 => tracing::info!(
                    topic = %p.topic, partition = p.index, segments = s.segments_rewritten,
                    removed = s.records_removed, bytes_before = s.bytes_before, bytes_after = s.bytes_after,
                    "compacted"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "compaction failed")
                }
            }
        }
    }

    pub fn checkpoint(&self) {
        self.on_internal_logs("checkpoint", PartitionLog::checkpoint);
        for p in self.every_partition() {
            if let Err(e) = p.local_log().map_or(Ok(()), |mut l| l.checkpoint()) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "checkpoint failed");
            }
        }
    }

    /// Ends a transaction: a COMMIT or ABORT marker on every partition it wrote to, its group offsets
    /// committed or dropped, then the coordinator's Complete state. On failure the transaction stays in its
    /// Prepare state and the work is redone by a retry or at the next start.
    pub async fn complete_transaction(&self, plan: &EndPlan) -> Result<(), i16> {
        let now = runnel_storage::now_ms();
        let marker_failed = |topic: &str, index: i32, e: runnel_storage::StorageError| {
            tracing::error!(topic = %topic, partition = index, error = %e, "cannot write transaction marker");
            kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code()
        };
        // Every marker is begun before any is waited for: in a cluster they share one commit round.
        let mut started = Vec::with_capacity(plan.partitions.len());
        for (topic, index) in &plan.partitions {
            let Some(partition) = self.partition(topic, *index) else {
                continue; // deleted since: nothing left to mark
            };
            let marker = runnel_storage::log::marker_batch(
                plan.producer_id,
                plan.marker_epoch,
                plan.commit,
                0,
                now,
            );
            let append = partition
                .start_append(marker, now)
                .await
                .map_err(|e| marker_failed(topic, *index, e))?;
            started.push((topic, *index, append));
        }
        for (topic, index, append) in started {
            append
                .finish()
                .await
                .map_err(|e| marker_failed(topic, index, e))?;
        }
        self.appended.notify_waiters();
        if let Some(node) = &self.cluster {
            // The groups' coordinators apply the outcome (Kafka's marker to __consumer_offsets).
            let written = node
                .coordinators
                .write_markers(&plan.groups, plan.producer_id, plan.commit)
                .await;
            if let Err(e) = written {
                tracing::error!(error = %e, "cannot write group transaction markers");
                return Err(kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code());
            }
        } else {
            for group in &plan.groups {
                let settled = tokio::task::block_in_place(|| {
                    self.groups
                        .complete_txn(group, plan.producer_id, plan.commit)
                });
                if let Err(e) = settled {
                    tracing::error!(group = %group, error = %e, "cannot settle transactional offsets");
                    return Err(
                        kafka_protocol::error::ResponseError::CoordinatorNotAvailable.code(),
                    );
                }
            }
        }
        tokio::task::block_in_place(|| self.txns.finish_end(plan))
    }

    /// Finishes transactions a previous run left between prepare and complete.
    pub async fn recover_transactions(&self) {
        for plan in self.txns.unfinished() {
            tracing::info!(transactional_id = %plan.transactional_id, commit = plan.commit, "completing transaction left by the previous run");
            if let Err(code) = self.complete_transaction(&plan).await {
                tracing::error!(transactional_id = %plan.transactional_id, code, "could not complete transaction");
            }
        }
    }

    /// Aborts transactions past their timeout.
    pub async fn abort_expired_transactions(&self) {
        for plan in self.txns.expire() {
            // As for EndTxn: the abort is decided in the database before its markers are written.
            let decided = self.durable(&self.txns, &plan.transactional_id).await;
            if let Err(code) = decided {
                tracing::warn!(transactional_id = %plan.transactional_id, code, "could not record the abort of an expired transaction");
                continue;
            }
            if let Err(code) = self.complete_transaction(&plan).await {
                tracing::error!(transactional_id = %plan.transactional_id, code, "could not abort expired transaction");
            }
        }
    }

    /// Clean shutdown: flush and seal every log, then leave the marker that lets the next start skip recovery.
    pub fn shutdown(&self) -> Result<(), BrokerError> {
        use rayon::prelude::*;
        let mut ok = self.on_internal_logs("close", PartitionLog::close);
        // Partitions close independently: their fsyncs overlap instead of queueing one behind another.
        let failed = self
            .every_partition()
            .par_iter()
            .filter(|p| match p.local_log().map_or(Ok(()), |mut l| l.close()) {
                Ok(()) => false,
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "close failed");
                    true
                }
            })
            .count();
        ok &= failed == 0;
        if ok {
            let marker = self.config.data_dir.join(CLEAN_SHUTDOWN_MARKER);
            std::fs::write(&marker, b"").map_err(|source| BrokerError::DataDir {
                path: marker.display().to_string(),
                source,
            })?;
        }
        tracing::info!(clean = ok, "broker stopped");
        Ok(())
    }
}

fn load_cluster_id(dir: &Path) -> Result<String, BrokerError> {
    let path = dir.join(CLUSTER_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(f) = serde_json::from_slice::<ClusterFile>(&bytes) {
            return Ok(f.cluster_id);
        }
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let f = ClusterFile {
        cluster_id: id.clone(),
    };
    runnel_storage::atomic_file::write(&path, &serde_json::to_vec(&f).unwrap_or_default())?;
    Ok(id)
}
