//! The durable catalog of topics: names, stable topic IDs, partition counts and per-topic config overrides.
//! It is one small JSON file replaced atomically on every change; topic metadata changes are rare.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::validate_topic_config;
use crate::error::{IoContext, Result, StorageError};

const CATALOG_FILE: &str = "catalog.json";
const MAX_TOPIC_NAME: usize = 249;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    /// Only keys set for this topic; defaults come from the broker and Kafka.
    pub configs: BTreeMap<String, String>,
    #[serde(default)]
    pub internal: bool,
    /// The replication factor clients are told of. On one node it is 1; in a cluster every broker serves
    /// every partition from object storage, and this only says how many brokers Metadata lists per
    /// partition.
    #[serde(default = "one_replica")]
    pub replication_factor: i16,
    /// Replica lists named at creation or growth, by partition; a partition not here is placed by hashing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub assignments: BTreeMap<i32, Vec<i32>>,
}

fn one_replica() -> i16 {
    1
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CatalogFile {
    topics: Vec<TopicMeta>,
}

pub struct Catalog {
    /// None for a catalog that only mirrors one kept elsewhere (a cluster's, in its database).
    path: Option<PathBuf>,
    topics: BTreeMap<String, TopicMeta>,
}

/// Kafka's topic name rule: 1 to 249 of `[a-zA-Z0-9._-]`, and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > MAX_TOPIC_NAME || !ok_chars || name == "." || name == ".." {
        return Err(StorageError::InvalidTopic(format!(
            "'{name}': topic names are 1 to {MAX_TOPIC_NAME} characters of [a-zA-Z0-9._-], not '.' or '..'"
        )));
    }
    Ok(())
}

impl Catalog {
    pub fn open(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join(CATALOG_FILE);
        let file: CatalogFile = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| StorageError::CorruptCatalog(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => CatalogFile::default(),
            Err(e) => return Err(e).at(&path),
        };
        let topics = file
            .topics
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        Ok(Catalog {
            path: Some(path),
            topics,
        })
    }

    /// A catalog kept only in memory, mirroring the one a cluster keeps in its database.
    pub fn mirror(topics: Vec<TopicMeta>) -> Self {
        Catalog {
            path: None,
            topics: topics.into_iter().map(|t| (t.name.clone(), t)).collect(),
        }
    }

    /// Replaces every topic of a mirror with the source's current list.
    pub fn replace_all(&mut self, topics: Vec<TopicMeta>) {
        self.topics = topics.into_iter().map(|t| (t.name.clone(), t)).collect();
    }

    /// Applies `change` to a copy of the topics, writes the copy, and only then keeps it: a failed write
    /// (a full disk) leaves the catalog in memory as it is on disk.
    fn save_with<T>(
        &mut self,
        change: impl FnOnce(&mut BTreeMap<String, TopicMeta>) -> Result<T>,
    ) -> Result<T> {
        let mut topics = self.topics.clone();
        let out = change(&mut topics)?;
        if let Some(path) = &self.path {
            let file = CatalogFile {
                topics: topics.values().cloned().collect(),
            };
            let bytes = serde_json::to_vec_pretty(&file)
                .map_err(|e| StorageError::CorruptCatalog(e.to_string()))?;
            crate::atomic_file::write(path, &bytes)?;
        }
        self.topics = topics;
        Ok(out)
    }

    /// Checks a topic creation without making it (CreateTopics validate_only uses this alone).
    pub fn validate_new_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &BTreeMap<String, String>,
    ) -> Result<()> {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return Err(StorageError::TopicExists(name.to_string()));
        }
        if partitions < 1 {
            return Err(StorageError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        for (k, v) in configs {
            validate_topic_config(k, v)?;
        }
        Ok(())
    }

    /// A validated new topic with a fresh ID, not yet recorded: the broker creates its partitions first and
    /// then [`Catalog::insert`]s it, so the catalog never names partitions that do not exist.
    pub fn new_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        internal: bool,
    ) -> Result<TopicMeta> {
        self.validate_new_topic(name, partitions, &configs)?;
        Ok(TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
            internal,
            replication_factor: 1,
            assignments: BTreeMap::new(),
        })
    }

    /// Records a topic made by [`Catalog::new_topic`].
    pub fn insert(&mut self, meta: TopicMeta) -> Result<()> {
        if self.topics.contains_key(&meta.name) {
            return Err(StorageError::TopicExists(meta.name));
        }
        self.save_with(|topics| {
            topics.insert(meta.name.clone(), meta);
            Ok(())
        })
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        internal: bool,
    ) -> Result<TopicMeta> {
        let meta = self.new_topic(name, partitions, configs, internal)?;
        self.insert(meta.clone())?;
        Ok(meta)
    }

    pub fn delete_topic(&mut self, name: &str) -> Result<TopicMeta> {
        self.save_with(|topics| {
            topics
                .remove(name)
                .ok_or_else(|| StorageError::UnknownTopicOrPartition(name.to_string()))
        })
    }

    /// Grows a topic to `count` partitions; `assignments` name the new partitions' replicas, if given.
    pub fn set_partitions(
        &mut self,
        name: &str,
        count: i32,
        assignments: BTreeMap<i32, Vec<i32>>,
    ) -> Result<TopicMeta> {
        self.save_with(|topics| {
            let topic = topics
                .get_mut(name)
                .ok_or_else(|| StorageError::UnknownTopicOrPartition(name.to_string()))?;
            if count <= topic.partitions {
                return Err(StorageError::InvalidPartitions(format!(
                    "topic currently has {} partitions, which is higher than the requested {count}",
                    topic.partitions
                )));
            }
            topic.partitions = count;
            topic.assignments.extend(assignments);
            Ok(topic.clone())
        })
    }

    /// Partitions of every topic, internal ones included.
    pub fn total_partitions(&self) -> i64 {
        self.topics.values().map(|t| i64::from(t.partitions)).sum()
    }

    /// Replaces the topic's overrides with `configs` (validated first).
    pub fn set_configs(
        &mut self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<TopicMeta> {
        for (k, v) in &configs {
            validate_topic_config(k, v)?;
        }
        self.save_with(|topics| {
            let topic = topics
                .get_mut(name)
                .ok_or_else(|| StorageError::UnknownTopicOrPartition(name.to_string()))?;
            topic.configs = configs;
            Ok(topic.clone())
        })
    }

    pub fn get(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name)
    }
    pub fn by_id(&self, id: Uuid) -> Option<&TopicMeta> {
        self.topics.values().find(|t| t.id == id)
    }
    pub fn topics(&self) -> impl Iterator<Item = &TopicMeta> {
        self.topics.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_ids_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Catalog::open(dir.path()).expect("open");
        let mut cfg = BTreeMap::new();
        cfg.insert("retention.ms".into(), "1000".into());
        let t = c.create_topic("orders", 3, cfg, false).expect("create");
        assert!(matches!(
            c.create_topic("orders", 1, BTreeMap::new(), false),
            Err(StorageError::TopicExists(_))
        ));
        c.set_partitions("orders", 5, BTreeMap::from([(4, vec![1])]))
            .expect("grow");
        drop(c);
        let c = Catalog::open(dir.path()).expect("reopen");
        let again = c.get("orders").expect("present");
        assert_eq!(again.id, t.id);
        assert_eq!(again.partitions, 5);
        assert_eq!(again.assignments.get(&4), Some(&vec![1]));
        assert_eq!(again.replication_factor, 1);
        assert_eq!(
            again.configs.get("retention.ms").map(String::as_str),
            Some("1000")
        );
    }

    #[test]
    fn bad_names_and_configs_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Catalog::open(dir.path()).expect("open");
        assert!(c.create_topic("a/b", 1, BTreeMap::new(), false).is_err());
        assert!(c.create_topic("..", 1, BTreeMap::new(), false).is_err());
        assert!(c.create_topic("ok", 0, BTreeMap::new(), false).is_err());
        let mut cfg = BTreeMap::new();
        cfg.insert("retention.ms".into(), "soon".into());
        assert!(c.create_topic("ok", 1, cfg, false).is_err());
    }
}
