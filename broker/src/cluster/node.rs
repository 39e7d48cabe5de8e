//! This broker as a member of a cluster: its connections to the two engines (object storage, the
//! metadata database), its registration and heartbeat, the commit pipeline and reader every shared
//! partition uses, and the live brokers as last heard. Started before the broker opens its partitions;
//! left on a clean stop so the others stop listing it at once.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use super::append_watch::AppendWatch;
use super::commit_pipeline::{CommitPipeline, RoundLimits};
use super::coordinator_store::CoordinatorStore;
use super::db::Db;
use super::objects::{ObjectStorage, ObjectStorageError};
use super::reader::{PartitionReader, ReadCache};
use super::registry::{LiveBroker, Registry, RegistryError};
use super::stats::{gauge, StoredCounts};
use super::DbError;

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Store(#[from] ObjectStorageError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// How this broker joins: from `--node-id`, `--storage`, `--metadata` and the `diskless.*` / `s3.*` keys.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    pub node_id: i32,
    pub storage_url: String,
    pub metadata_url: String,
    /// object_store's S3 keys given as `s3.*` broker keys (over the `AWS_*` environment).
    pub s3: Vec<(String, String)>,
    pub rack: Option<String>,
    pub session_timeout: Duration,
    pub rounds: RoundLimits,
    pub cache_bytes: usize,
    /// How long an object no batch names is kept before it is deleted.
    pub delete_grace: Duration,
    /// How old a round's batches must be before they are copied into segment objects, and their size.
    pub compaction_delay: Duration,
    pub segment_bytes: u64,
}

/// A partition's segment rows (count, highest base offset) as a cleaning pass left them, and when: the
/// next pass runs only once they changed or a tombstone may have aged past `delete.retention.ms`.
#[derive(Debug, Clone, Copy)]
pub struct KeyPass {
    pub rows: (i64, i64),
    pub at: std::time::Instant,
}

pub struct ClusterNode {
    pub node_id: i32,
    pub cluster_id: String,
    /// Woken with every commit heard from any broker.
    pub appended: Arc<Notify>,
    /// Woken when the topic catalog may have changed.
    pub topics_changed: Arc<Notify>,
    pub rack: Option<String>,
    pub db: Db,
    pub store: Arc<ObjectStorage>,
    pub pipeline: CommitPipeline,
    pub reader: PartitionReader,
    pub cache: Arc<ReadCache>,
    pub watch: Arc<AppendWatch>,
    /// Groups' and transactional ids' claims and records.
    pub coordinators: Arc<CoordinatorStore>,
    /// The versions of the shared metadata documents (ACLs, credentials, quotas, broker configs) installed.
    pub documents: super::documents::Documents,
    /// Set when a heartbeat finds the lease had run out: whatever this broker held by claim may have been
    /// taken over, so its coordinators forget it all.
    pub lease_lapsed: std::sync::atomic::AtomicBool,
    /// Set when the registry's connection stopped answering: the next heartbeat connects afresh.
    registry_stale: std::sync::atomic::AtomicBool,
    /// How long an object no batch names is kept before it is deleted (`diskless.object.delete.grace.ms`).
    pub delete_grace: Duration,
    /// `diskless.compaction.delay.ms` and `diskless.segment.bytes`.
    pub compaction_delay: Duration,
    pub segment_bytes: u64,
    /// Per compacted partition, what its segment rows were after the last cleaning pass and when it ran.
    pub key_passes: std::sync::Mutex<HashMap<(Uuid, i32), KeyPass>>,
    /// Held while a coordinator key is being claimed and loaded.
    pub claiming: tokio::sync::Mutex<()>,
    pub stored: StoredCounts,
    session_timeout: Duration,
    registry: tokio::sync::Mutex<Option<Registry>>,
    live: RwLock<Vec<LiveBroker>>,
}

impl ClusterNode {
    /// Checks both engines, brings the schema up to date, registers this broker (refused while another
    /// live broker holds the node id) and starts the heartbeat. `appended` is woken on every commit heard
    /// from any broker; `listeners` are the advertised listeners, `NAME://HOST:PORT,...`.
    pub async fn start(
        settings: ClusterSettings,
        listeners: &str,
    ) -> Result<Arc<Self>, ClusterError> {
        let appended = Arc::new(Notify::new());
        let topics_changed = Arc::new(Notify::new());
        let store = Arc::new(ObjectStorage::open(&settings.storage_url, &settings.s3)?);
        // Brokers are often started together with their engines: wait for both rather than fail.
        until_ready("object storage", || store.probe()).await;
        let mut admin = until_ready("the metadata database", || {
            super::connect(&settings.metadata_url)
        })
        .await;
        let applied = super::migrate(&mut admin).await?;
        if !applied.is_empty() {
            tracing::info!(?applied, "metadata schema migrated");
        }
        let cluster_id = cluster_id(&admin).await?;
        let registry = register(admin, &settings, listeners).await?;
        let live = registry.live().await?;
        let cache = Arc::new(ReadCache::new(settings.cache_bytes));
        let pipeline = CommitPipeline::start(
            Arc::clone(&store),
            settings.metadata_url.clone(),
            settings.node_id,
            settings.rounds,
            Arc::clone(&cache),
        );
        let watch = AppendWatch::start(
            settings.metadata_url.clone(),
            Arc::clone(&appended),
            Arc::clone(&topics_changed),
        );
        let coordinators = CoordinatorStore::start(settings.node_id, settings.metadata_url.clone());
        let node = Arc::new(ClusterNode {
            node_id: settings.node_id,
            cluster_id,
            appended,
            topics_changed,
            rack: settings.rack,
            db: Db::new(settings.metadata_url),
            reader: PartitionReader::new(Arc::clone(&store), Arc::clone(&cache)),
            store,
            pipeline,
            cache,
            watch,
            coordinators,
            documents: super::documents::Documents::default(),
            lease_lapsed: std::sync::atomic::AtomicBool::new(false),
            claiming: tokio::sync::Mutex::new(()),
            delete_grace: settings.delete_grace,
            compaction_delay: settings.compaction_delay,
            segment_bytes: settings.segment_bytes,
            key_passes: std::sync::Mutex::default(),
            registry_stale: std::sync::atomic::AtomicBool::new(false),
            stored: StoredCounts::default(),
            session_timeout: settings.session_timeout,
            registry: tokio::sync::Mutex::new(Some(registry)),
            live: RwLock::new(live),
        });
        tokio::spawn(heartbeat(Arc::clone(&node)));
        tokio::spawn(follow_registrations(Arc::clone(&node)));
        tokio::spawn(count_stored_now_and_then(Arc::clone(&node)));
        tracing::info!(node_id = node.node_id, storage = %settings.storage_url, "joined the cluster");
        Ok(node)
    }

    /// The brokers whose lease held at the last heartbeat, by node id.
    pub fn live_brokers(&self) -> Vec<LiveBroker> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads the live brokers now rather than at the last heartbeat: a claim decides who holds a key on the
    /// freshest view, so two brokers whose views lag do not take a key from each other in turn.
    pub async fn refresh_live(&self) -> Result<(), ClusterError> {
        let client = self.db.client().await?;
        let live = super::registry::live_brokers(&client).await?;
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = live;
        Ok(())
    }

    /// Leaves the cluster (a clean stop): the row goes, so no one lists this broker any more.
    pub async fn leave(&self) {
        if let Some(registry) = self.registry.lock().await.take() {
            if let Err(e) = registry.leave().await {
                tracing::warn!(error = %e, "could not leave the cluster; the lease will run out");
            }
        }
    }

    /// This broker's cluster metrics in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let stats = self.pipeline.stats();
        stats.upload.render(
            "runnel_cluster_upload_seconds",
            "Time to upload one round's object to object storage.",
            &mut out,
        );
        stats.commit.render(
            "runnel_cluster_commit_seconds",
            "Time of one round's commit transaction in the metadata database.",
            &mut out,
        );
        let (hits, misses) = self.cache.counts();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let rows: [(&str, &str, &str, String); 9] = [
            (
                "runnel_cluster_rounds_failed_total",
                "counter",
                "Rounds whose upload or commit failed (their producers were told to retry).",
                load(&stats.rounds_failed).to_string(),
            ),
            (
                "runnel_cluster_uploaded_bytes_total",
                "counter",
                "Bytes uploaded to object storage by this broker.",
                load(&stats.bytes_uploaded).to_string(),
            ),
            (
                "runnel_cluster_read_cache_hits_total",
                "counter",
                "Batches served from the read cache.",
                hits.to_string(),
            ),
            (
                "runnel_cluster_read_cache_misses_total",
                "counter",
                "Batches read from object storage.",
                misses.to_string(),
            ),
            (
                "runnel_cluster_read_cache_bytes",
                "gauge",
                "Bytes held by the read cache.",
                self.cache.size().to_string(),
            ),
            (
                "runnel_cluster_live_brokers",
                "gauge",
                "Brokers whose lease held at the last heartbeat.",
                self.live_brokers().len().to_string(),
            ),
            (
                "runnel_cluster_objects",
                "gauge",
                "Objects in the bucket that the index names.",
                self.stored.objects.load(Ordering::Relaxed).to_string(),
            ),
            (
                "runnel_cluster_object_bytes",
                "gauge",
                "Bytes of those objects.",
                self.stored.object_bytes.load(Ordering::Relaxed).to_string(),
            ),
            (
                "runnel_cluster_batch_rows",
                "gauge",
                "Rows of the batch index.",
                self.stored.batch_rows.load(Ordering::Relaxed).to_string(),
            ),
        ];
        for (name, kind, help, value) in rows {
            gauge(&mut out, name, kind, help, value);
        }
        out
    }

    /// Counts the objects and index rows (once every few heartbeats: a count is a scan).
    async fn count_stored(&self) -> Result<(), DbError> {
        let db = self.db.client().await?;
        let row = db
            .query_one(
                "SELECT (SELECT count(*) FROM runnel_objects),
                        (SELECT coalesce(sum(size_bytes), 0)::bigint FROM runnel_objects),
                        (SELECT count(*) FROM runnel_batches)",
                &[],
            )
            .await?;
        self.stored.objects.store(row.get(0), Ordering::Relaxed);
        self.stored
            .object_bytes
            .store(row.get(1), Ordering::Relaxed);
        self.stored.batch_rows.store(row.get(2), Ordering::Relaxed);
        Ok(())
    }

    async fn beat(&self) -> Result<(), ClusterError> {
        let mut slot = self.registry.lock().await;
        let Some(registry) = slot.take() else {
            return Ok(()); // left
        };
        let stale = self.registry_stale.swap(false, Ordering::SeqCst);
        let registry = if registry.is_connected() && !stale {
            registry
        } else {
            match super::connect(self.db.url()).await {
                Ok(client) => registry.reconnected(client),
                Err(e) => {
                    *slot = Some(registry);
                    return Err(e.into());
                }
            }
        };
        // A connection that stopped answering must not stop the heartbeat: give up on it after a beat's
        // interval and connect afresh next time.
        let wait = self.session_timeout / 3;
        let answered = tokio::time::timeout(wait, async {
            (registry.heartbeat().await, registry.live().await)
        })
        .await;
        let Ok((renewed, live)) = answered else {
            self.registry_stale.store(true, Ordering::SeqCst);
            *slot = Some(registry);
            return Err(ClusterError::Db(super::DbError::NoAnswer(wait)));
        };
        *slot = Some(registry);
        drop(slot);
        if renewed?.had_expired {
            self.lease_lapsed.store(true, Ordering::SeqCst);
            tracing::warn!(
                node_id = self.node_id,
                "this broker's lease had run out (paused or cut off); renewed"
            );
        }
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = live?;
        Ok(())
    }
}

/// Registers this broker. A restart right after a crash finds its own previous life's lease still
/// running: it waits for that lease to run out (up to twice the session timeout) before giving up, so a
/// supervisor's immediate restart works.
async fn register(
    admin: tokio_postgres::Client,
    settings: &ClusterSettings,
    listeners: &str,
) -> Result<Registry, ClusterError> {
    let deadline = tokio::time::Instant::now() + settings.session_timeout * 2;
    let mut admin = admin;
    loop {
        match Registry::register(
            admin,
            settings.node_id,
            listeners,
            settings.rack.as_deref(),
            settings.session_timeout,
        )
        .await
        {
            Err(RegistryError::NodeIdInUse(id)) if tokio::time::Instant::now() < deadline => {
                tracing::info!(
                    node_id = id,
                    "node id still leased (an earlier run?); waiting for the lease to run out"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
                admin = super::connect(&settings.metadata_url).await?;
            }
            other => return Ok(other?),
        }
    }
}

/// Retries `attempt` every second until it succeeds, saying why while it does not.
async fn until_ready<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    attempt: impl Fn() -> F,
) -> T {
    let mut tries = 0u32;
    loop {
        match attempt().await {
            Ok(v) => return v,
            Err(e) => {
                tries += 1;
                // Every try at first, then every tenth, so a long wait does not flood the log.
                if tries <= 3 || tries.is_multiple_of(10) {
                    tracing::warn!(error = %e, tries, "waiting for {what}");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The cluster's id: the first broker's choice, read by every later one.
async fn cluster_id(client: &tokio_postgres::Client) -> Result<String, DbError> {
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    client
        .execute(
            "INSERT INTO runnel_cluster (cluster_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&fresh],
        )
        .await
        .map_err(DbError::from)?;
    let row = client
        .query_one("SELECT cluster_id FROM runnel_cluster", &[])
        .await
        .map_err(DbError::from)?;
    Ok(row.get(0))
}

/// Renews the lease three times per session timeout, so one missed beat does not cost the lease.
/// Reads the live brokers again whenever one registers or leaves.
async fn follow_registrations(node: Arc<ClusterNode>) {
    loop {
        node.watch.brokers_changed.notified().await;
        if let Err(e) = node.refresh_live().await {
            tracing::debug!(error = %e, "cannot read the live brokers");
        }
    }
}

/// The counts behind the object and row gauges, in a task of their own: a count is a scan, and one that
/// waited for a busy database inside the heartbeat loop once let every broker's lease run out.
async fn count_stored_now_and_then(node: Arc<ClusterNode>) {
    let mut tick = tokio::time::interval(node.session_timeout * 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if node.registry.lock().await.is_none() {
            return;
        }
        if let Err(e) = node.count_stored().await {
            tracing::debug!(error = %e, "cannot count stored objects");
        }
    }
}

async fn heartbeat(node: Arc<ClusterNode>) {
    let mut tick = tokio::time::interval(node.session_timeout / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if node.registry.lock().await.is_none() {
            return;
        }
        match node.beat().await {
            Ok(()) => {}
            Err(ClusterError::Registry(RegistryError::Lost(id))) => {
                // Another process took this node id over while this one was away: serving on would make
                // two node N's. Stop taking part; the process is restarted by its supervisor.
                tracing::error!(
                    node_id = id,
                    "node id taken over by another broker; leaving the cluster"
                );
                node.registry.lock().await.take();
                return;
            }
            Err(e) => tracing::warn!(error = %e, "heartbeat failed; retrying"),
        }
    }
}
