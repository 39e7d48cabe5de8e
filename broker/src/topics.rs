//! Topic administration on the broker: creation (explicit and automatic), deletion, partition growth and
//! config changes. Partition counts are checked against the broker's limits before anything is touched;
//! new partitions are created on disk first and recorded in the catalog only once they all exist, and a
//! creation that fails half-way removes what it made, so the catalog never names a partition that is not
//! there.

use std::collections::BTreeMap;
use std::sync::Arc;

use runnel_storage::{PartitionLog, StorageError, TopicMeta};

use crate::broker::{partition_dir, Broker, Partition};

/// The replicas a request names for a new topic: a factor, or explicit lists by partition (from which the
/// factor follows). Every broker of a cluster serves every partition whatever these say; they set what
/// Metadata lists.
#[derive(Debug, Clone, Default)]
pub struct Replicas {
    /// -1 (or 0) for the default of 1.
    pub factor: i16,
    pub assignments: BTreeMap<i32, Vec<i32>>,
}

impl Replicas {
    fn factor(&self) -> i16 {
        match self.assignments.values().next() {
            Some(first) => i16::try_from(first.len()).unwrap_or(i16::MAX),
            None => self.factor.max(1),
        }
    }
}

impl Broker {
    fn open_partitions(
        &self,
        meta: &TopicMeta,
        from: i32,
    ) -> Result<Vec<Arc<Partition>>, StorageError> {
        let cfg = self.log_config(&meta.configs);
        let now = runnel_storage::now_ms();
        let mut opened = Vec::new();
        for p in from..meta.partitions {
            let dir = partition_dir(&self.config.data_dir, &meta.name, p);
            // A leftover directory (a crash between files and catalog) must not leak old data in.
            let opened_one = remove_dir_if_present(&dir)
                .and_then(|()| PartitionLog::open(&dir, cfg.clone(), true, now));
            match opened_one {
                Ok(log) => opened.push(Arc::new(Partition::local(meta.name.clone(), p, log))),
                Err(e) => {
                    drop(opened);
                    self.remove_partition_dirs(&meta.name, from..=p);
                    return Err(e);
                }
            }
        }
        Ok(opened)
    }

    fn remove_partition_dirs(&self, topic: &str, range: impl Iterator<Item = i32>) {
        for p in range {
            let dir = partition_dir(&self.config.data_dir, topic, p);
            if let Err(e) = remove_dir_if_present(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
            }
        }
    }

    /// Refuses `adding` partitions past the per-request or the broker-wide limit, before anything is made.
    fn check_partition_limits(&self, current_total: i64, adding: i64) -> Result<(), StorageError> {
        let per_request = self.config.max_partitions_per_request();
        if adding > per_request {
            return Err(StorageError::PolicyViolation(format!(
                "Excessively large number of partitions per request: {adding} exceeds max.partitions.per.request={per_request}."
            )));
        }
        let broker_max = self.config.max_broker_partitions();
        if current_total + adding > broker_max {
            return Err(StorageError::PolicyViolation(format!(
                "Adding {adding} partitions would make {} on this broker, more than max.broker.partitions={broker_max}.",
                current_total + adding
            )));
        }
        Ok(())
    }

    /// Creates a topic (or only validates it). A partition count of -1 means the broker's `num.partitions`.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        replicas: Replicas,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let partitions = if partitions == -1 {
            self.config.num_partitions()
        } else {
            partitions
        };
        match &self.cluster {
            Some(node) => {
                let meta =
                    self.checked_new_topic(&self.catalog(), name, partitions, configs, replicas)?;
                if validate_only {
                    return Ok(TopicMeta {
                        id: uuid::Uuid::nil(),
                        ..meta
                    });
                }
                self.create_shared_topic(node, meta).await
            }
            None => self.create_local_topic(name, partitions, configs, replicas, validate_only),
        }
    }

    /// A new topic checked against the catalog and the partition limits, not yet made.
    fn checked_new_topic(
        &self,
        catalog: &runnel_storage::Catalog,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        replicas: Replicas,
    ) -> Result<TopicMeta, StorageError> {
        let mut meta = catalog.new_topic(name, partitions, configs, false)?;
        self.check_partition_limits(catalog.total_partitions(), i64::from(partitions))?;
        meta.replication_factor = replicas.factor();
        meta.assignments = replicas.assignments;
        Ok(meta)
    }

    fn create_local_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        replicas: Replicas,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let mut catalog = self.catalog();
        let mut meta = self.checked_new_topic(&catalog, name, partitions, configs, replicas)?;
        if validate_only {
            meta.id = uuid::Uuid::nil();
            return Ok(meta);
        }
        let logs = self.open_partitions(&meta, 0)?;
        if let Err(e) = catalog.insert(meta.clone()) {
            drop(logs);
            self.remove_partition_dirs(name, 0..partitions);
            return Err(e);
        }
        self.partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(meta.name.clone(), logs);
        tracing::info!(topic = name, partitions, id = %meta.id, "topic created");
        Ok(meta)
    }

    /// The topic, created with broker defaults if it is missing and auto creation is on.
    pub async fn topic_or_auto_create(
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
        match self
            .create_topic(name, -1, BTreeMap::new(), Replicas::default(), false)
            .await
        {
            Ok(meta) => Ok(Some(meta)),
            // Another connection created it first.
            Err(StorageError::TopicExists(_)) => Ok(self.topic_meta(name)),
            Err(e) => Err(e),
        }
    }

    pub async fn delete_topic(&self, name: &str) -> Result<TopicMeta, StorageError> {
        match &self.cluster {
            Some(node) => self.delete_shared_topic(node, name).await,
            None => self.delete_local_topic(name),
        }
    }

    fn delete_local_topic(&self, name: &str) -> Result<TopicMeta, StorageError> {
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

    /// Grows a topic to `count` partitions; `assignments` name the new ones' replicas, by partition.
    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: BTreeMap<i32, Vec<i32>>,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let Some(node) = &self.cluster else {
            return self.create_local_partitions(name, count, assignments, validate_only);
        };
        let grown = self.checked_growth(&self.catalog(), name, count, assignments)?;
        if !validate_only {
            self.grow_shared_topic(node, &grown).await?;
        }
        Ok(grown)
    }

    /// The topic grown to `count` partitions, checked against its current count and the limits.
    fn checked_growth(
        &self,
        catalog: &runnel_storage::Catalog,
        name: &str,
        count: i32,
        assignments: BTreeMap<i32, Vec<i32>>,
    ) -> Result<TopicMeta, StorageError> {
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
        let adding = i64::from(count) - i64::from(current.partitions);
        self.check_partition_limits(catalog.total_partitions(), adding)?;
        let mut grown = TopicMeta {
            partitions: count,
            ..current
        };
        grown.assignments.extend(assignments);
        Ok(grown)
    }

    fn create_local_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: BTreeMap<i32, Vec<i32>>,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let mut catalog = self.catalog();
        let grown = self.checked_growth(&catalog, name, count, assignments.clone())?;
        let current = catalog.get(name).map_or(count, |t| t.partitions);
        if validate_only {
            return Ok(grown);
        }
        let added = self.open_partitions(&grown, current)?;
        let meta = match catalog.set_partitions(name, count, assignments) {
            Ok(meta) => meta,
            Err(e) => {
                drop(added);
                self.remove_partition_dirs(name, current..count);
                return Err(e);
            }
        };
        self.partitions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .extend(added);
        Ok(meta)
    }

    /// Replaces a topic's config overrides and applies them to its open logs.
    pub async fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        let Some(node) = &self.cluster else {
            return self.set_local_topic_configs(name, configs, validate_only);
        };
        let current = self.checked_configs(name, &configs)?;
        if !validate_only {
            self.configure_shared_topic(node, name, &configs).await?;
        }
        Ok(TopicMeta { configs, ..current })
    }

    /// The topic as it is, once `configs` are checked as valid overrides.
    fn checked_configs(
        &self,
        name: &str,
        configs: &BTreeMap<String, String>,
    ) -> Result<TopicMeta, StorageError> {
        for (k, v) in configs {
            runnel_storage::config::validate_topic_config(k, v)?;
        }
        self.topic_meta(name)
            .ok_or_else(|| StorageError::UnknownTopicOrPartition(name.to_string()))
    }

    fn set_local_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, StorageError> {
        if validate_only {
            let current = self.checked_configs(name, &configs)?;
            return Ok(TopicMeta { configs, ..current });
        }
        let meta = self.catalog().set_configs(name, configs)?;
        let cfg = self.log_config(&meta.configs);
        for p in self.topic_partitions(name).unwrap_or_default() {
            p.set_config(cfg.clone());
        }
        Ok(meta)
    }
}

fn remove_dir_if_present(dir: &std::path::Path) -> Result<(), StorageError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::Io {
            path: dir.display().to_string(),
            source: e,
        }),
    }
}
