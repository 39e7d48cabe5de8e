//! Topic administration on the broker: creation (explicit and automatic), deletion, partition growth and
//! config changes. The catalog is changed first (it validates), then the partition logs follow it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use runnel_storage::{PartitionLog, StorageError, TopicMeta};

use crate::broker::{partition_dir, Broker, Partition};

impl Broker {
    fn open_partitions(
        &self,
        meta: &TopicMeta,
        from: i32,
    ) -> Result<Vec<Arc<Partition>>, StorageError> {
        let cfg = self.log_config(&meta.configs);
        let now = runnel_storage::now_ms();
        (from..meta.partitions)
            .map(|p| {
                let dir = partition_dir(&self.config.data_dir, &meta.name, p);
                // A leftover directory (a crash between catalog and files) must not leak old data in.
                if dir.exists() && from == 0 {
                    std::fs::remove_dir_all(&dir).map_err(|e| StorageError::Io {
                        path: dir.display().to_string(),
                        source: e,
                    })?;
                }
                let log = PartitionLog::open(&dir, cfg.clone(), true, now)?;
                Ok(Arc::new(Partition {
                    topic: meta.name.clone(),
                    index: p,
                    log: Mutex::new(log),
                }))
            })
            .collect()
    }

    /// Creates a topic (or only validates it). A partition count of -1 means the broker's `num.partitions`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let partitions = if partitions == -1 {
            self.config.num_partitions()
        } else {
            partitions
        };
        let mut catalog = self.catalog();
        if validate_only {
            catalog.validate_new_topic(name, partitions, &configs)?;
            return Ok(TopicMeta {
                name: name.to_string(),
                id: uuid::Uuid::nil(),
                partitions,
                configs,
                internal: false,
            });
        }
        let meta = catalog.create_topic(name, partitions, configs, false)?;
        let logs = match self.open_partitions(&meta, 0) {
            Ok(logs) => logs,
            Err(e) => {
                let _ = catalog.delete_topic(name);
                return Err(e);
            }
        };
        self.partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(meta.name.clone(), logs);
        tracing::info!(topic = name, partitions, id = %meta.id, "topic created");
        Ok(meta)
    }

    /// The topic, created with broker defaults if it is missing and auto creation is on.
    pub fn topic_or_auto_create(
        &self,
        name: &str,
        allow: bool,
    ) -> Result<Option<TopicMeta>, StorageError> {
        if let Some(meta) = self.topic_meta(name) {
            return Ok(Some(meta));
        }
        if !(allow && self.config.auto_create_topics()) {
            return Ok(None);
        }
        match self.create_topic(name, -1, BTreeMap::new(), false) {
            Ok(meta) => Ok(Some(meta)),
            // Another connection created it first.
            Err(StorageError::TopicExists(_)) => Ok(self.topic_meta(name)),
            Err(e) => Err(e),
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<TopicMeta, StorageError> {
        let mut catalog = self.catalog();
        let meta = catalog.delete_topic(name)?;
        let logs = self
            .partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
            .unwrap_or_default();
        for p in logs {
            let dir = partition_dir(&self.config.data_dir, name, p.index);
            // Readers holding the partition keep their open files; the directory goes now.
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
            }
        }
        tracing::info!(topic = name, "topic deleted");
        Ok(meta)
    }

    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let mut catalog = self.catalog();
        let current = catalog
            .get(name)
            .cloned()
            .ok_or_else(|| StorageError::UnknownTopicOrPartition(name.to_string()))?;
        if count <= current.partitions {
            return Err(StorageError::InvalidPartitions(format!(
                "Topic currently has {} partitions, which is higher than the requested {count}.",
                current.partitions
            )));
        }
        if validate_only {
            return Ok(TopicMeta {
                partitions: count,
                ..current
            });
        }
        let meta = catalog.set_partitions(name, count)?;
        let added = self.open_partitions(&meta, current.partitions)?;
        self.partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .extend(added);
        Ok(meta)
    }

    /// Replaces a topic's config overrides and applies them to its open logs.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let mut catalog = self.catalog();
        if validate_only {
            for (k, v) in &configs {
                runnel_storage::config::validate_topic_config(k, v)?;
            }
            let current = catalog
                .get(name)
                .cloned()
                .ok_or_else(|| StorageError::UnknownTopicOrPartition(name.to_string()))?;
            return Ok(TopicMeta { configs, ..current });
        }
        let meta = catalog.set_configs(name, configs)?;
        let cfg = self.log_config(&meta.configs);
        for p in self.topic_partitions(name).unwrap_or_default() {
            p.log().set_config(cfg.clone());
        }
        Ok(meta)
    }
}
