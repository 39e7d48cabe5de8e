//! Topic administration in cluster mode: the database's `runnel_topics` is the catalog, each change one
//! transaction there; every broker's in-memory catalog and partition map mirror it, brought up to date when
//! the `runnel_topics` channel tells of a change (and every few seconds in case a notification was lost).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use runnel_storage::{StorageError, TopicMeta};

use crate::broker::{Broker, Partition};
use crate::cluster::topic_table::{self, TopicTableError};
use crate::cluster::{ClusterNode, SharedPartition};

/// A re-read of the catalog however quiet the channel is.
const RESYNC_EVERY: Duration = Duration::from_secs(5);

fn storage_error(e: TopicTableError) -> StorageError {
    match e {
        TopicTableError::Exists(name) => StorageError::TopicExists(name),
        TopicTableError::Unknown(name) => StorageError::UnknownTopicOrPartition(name),
        TopicTableError::Postgres(e) => StorageError::Unavailable(e.to_string()),
    }
}

fn unavailable(e: impl std::fmt::Display) -> StorageError {
    StorageError::Unavailable(e.to_string())
}

impl Broker {
    /// Makes the catalog and partitions mirror the database's topics.
    pub async fn sync_topics(&self, node: &Arc<ClusterNode>) -> Result<(), StorageError> {
        let db = node.db.client().await.map_err(unavailable)?;
        let topics = topic_table::load_all(&*db).await.map_err(storage_error)?;
        self.mirror(node, topics);
        Ok(())
    }

    fn mirror(&self, node: &Arc<ClusterNode>, topics: Vec<TopicMeta>) {
        let mut catalog = self.catalog();
        let mut map = self.partitions.write().unwrap_or_else(|p| p.into_inner());
        let mut next: HashMap<String, Vec<Arc<Partition>>> = HashMap::new();
        for meta in &topics {
            let cfg = self.log_config(&meta.configs);
            let mut parts: Vec<Arc<Partition>> =
                match (catalog.get(&meta.name), map.get(&meta.name)) {
                    // The same topic as before (not deleted and re-created under the name): keep its partitions.
                    (Some(old), Some(parts)) if old.id == meta.id => parts.clone(),
                    _ => Vec::new(),
                };
            for p in &parts {
                p.set_config(cfg.clone());
            }
            let have = i32::try_from(parts.len()).unwrap_or(i32::MAX);
            for index in have..meta.partitions {
                let shared = SharedPartition::new(
                    Arc::clone(node),
                    meta.id,
                    meta.name.clone(),
                    index,
                    cfg.clone(),
                );
                parts.push(Arc::new(Partition::shared(
                    meta.name.clone(),
                    index,
                    shared,
                )));
            }
            next.insert(meta.name.clone(), parts);
        }
        *map = next;
        catalog.replace_all(topics);
    }

    pub(crate) async fn create_shared_topic(
        &self,
        node: &Arc<ClusterNode>,
        meta: TopicMeta,
    ) -> Result<TopicMeta, StorageError> {
        let mut db = crate::cluster::connect(node.db.url())
            .await
            .map_err(unavailable)?;
        topic_table::create(&mut db, &meta)
            .await
            .map_err(storage_error)?;
        self.sync_topics(node).await?;
        tracing::info!(topic = %meta.name, partitions = meta.partitions, id = %meta.id, "topic created in the cluster");
        Ok(meta)
    }

    pub(crate) async fn delete_shared_topic(
        &self,
        node: &Arc<ClusterNode>,
        name: &str,
    ) -> Result<TopicMeta, StorageError> {
        let mut db = crate::cluster::connect(node.db.url())
            .await
            .map_err(unavailable)?;
        let meta = topic_table::delete(&mut db, name)
            .await
            .map_err(storage_error)?;
        self.sync_topics(node).await?;
        tracing::info!(topic = name, "topic deleted from the cluster");
        Ok(meta)
    }

    pub(crate) async fn grow_shared_topic(
        &self,
        node: &Arc<ClusterNode>,
        grown: &TopicMeta,
    ) -> Result<(), StorageError> {
        let mut db = crate::cluster::connect(node.db.url())
            .await
            .map_err(unavailable)?;
        topic_table::set_partitions(
            &mut db,
            grown.id,
            &grown.name,
            grown.partitions,
            &grown.assignments,
        )
        .await
        .map_err(storage_error)?;
        self.sync_topics(node).await
    }

    pub(crate) async fn configure_shared_topic(
        &self,
        node: &Arc<ClusterNode>,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<(), StorageError> {
        let mut db = crate::cluster::connect(node.db.url())
            .await
            .map_err(unavailable)?;
        topic_table::set_configs(&mut db, name, configs)
            .await
            .map_err(storage_error)?;
        self.sync_topics(node).await
    }
}

/// Keeps this broker's mirror of the catalog current: on every change heard, and every few seconds.
pub fn spawn_topic_follower(broker: &Arc<Broker>, node: Arc<ClusterNode>) {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(RESYNC_EVERY, node.topics_changed.notified()).await;
            if let Err(e) = broker.sync_topics(&node).await {
                tracing::warn!(error = %e, "cannot read the cluster's topics; retrying");
            }
        }
    });
}
