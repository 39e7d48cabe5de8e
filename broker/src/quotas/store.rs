//! Client quota configurations (KIP-55, KIP-546): values per entity (user, client id, or both; each may be
//! the default), durable in the data directory, resolved in Kafka's order of precedence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

pub const QUOTA_FILE: &str = "client-quotas.json";

/// Keys Kafka accepts for user / client-id entities.
pub const QUOTA_KEYS: &[&str] = &[
    "producer_byte_rate",
    "consumer_byte_rate",
    "request_percentage",
    "controller_mutation_rate",
];

/// `None`: no such component; `Some(None)`: the default entity; `Some(Some(name))`: a named one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entity {
    pub user: Option<Option<String>>,
    pub client_id: Option<Option<String>>,
}

pub use crate::metadata_file::MetadataFileError as QuotaStoreError;

/// An entity's (type, name) pairs; a `None` name is the default entity.
pub type Components = Vec<(String, Option<String>)>;

/// A batch of quota changes: per entity, keys set (`Some`) or removed (`None`).
pub type QuotaChanges = Vec<(Entity, Vec<(String, Option<f64>)>)>;

/// On disk an entity is its components as Kafka lists them, `[["user", null], ["client-id", "app"]]`
/// (null: the default), since `Option<Option<_>>` would not survive JSON.
#[derive(Default, Serialize, Deserialize, Clone)]
struct QuotaFile {
    entries: Vec<(Components, BTreeMap<String, f64>)>,
}

impl Entity {
    pub fn components(&self) -> Components {
        let mut out = Vec::new();
        if let Some(u) = &self.user {
            out.push(("user".to_string(), u.clone()));
        }
        if let Some(c) = &self.client_id {
            out.push(("client-id".to_string(), c.clone()));
        }
        out
    }

    fn from_components(parts: Components) -> Self {
        let mut e = Entity {
            user: None,
            client_id: None,
        };
        for (kind, name) in parts {
            match kind.as_str() {
                "user" => e.user = Some(name),
                _ => e.client_id = Some(name),
            }
        }
        e
    }
}

pub struct QuotaStore {
    path: PathBuf,
    entries: RwLock<Entries>,
}

type Entries = BTreeMap<Entity, BTreeMap<String, f64>>;

fn file_of(entries: &Entries) -> QuotaFile {
    QuotaFile {
        entries: entries
            .iter()
            .map(|(e, v)| (e.components(), v.clone()))
            .collect(),
    }
}

fn entries_of(file: QuotaFile) -> Entries {
    file.entries
        .into_iter()
        .map(|(parts, values)| (Entity::from_components(parts), values))
        .collect()
}

impl QuotaStore {
    pub fn open(data_dir: &Path) -> Result<Self, QuotaStoreError> {
        let path = data_dir.join(QUOTA_FILE);
        let file: QuotaFile = crate::metadata_file::load(&path)?;
        Ok(QuotaStore {
            path,
            entries: RwLock::new(entries_of(file)),
        })
    }

    pub fn all(&self) -> Vec<(Entity, BTreeMap<String, f64>)> {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(e, v)| (e.clone(), v.clone()))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    /// Sets (`Some`) or removes (`None`) keys per entity, written once.
    pub fn alter(&self, changes: QuotaChanges) -> Result<(), QuotaStoreError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        let mut next = entries.clone();
        for (entity, ops) in changes {
            let values = next.entry(entity.clone()).or_default();
            for (key, value) in ops {
                match value {
                    Some(v) => values.insert(key, v),
                    None => values.remove(&key),
                };
            }
            if values.is_empty() {
                next.remove(&entity);
            }
        }
        crate::metadata_file::save(&self.path, &file_of(&next), false)?;
        *entries = next;
        Ok(())
    }

    /// The quota that applies to (user, client id) for `key`, and the entity it was configured on (whose
    /// clients share it), in Kafka's precedence: user+client, user+default client, user, default
    /// user+client, default user+default client, default user, client, default client.
    pub fn resolve(&self, user: &str, client_id: &str, key: &str) -> Option<(Entity, f64)> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        let u = || Some(Some(user.to_string()));
        let c = || Some(Some(client_id.to_string()));
        let candidates = [
            (u(), c()),
            (u(), Some(None)),
            (u(), None),
            (Some(None), c()),
            (Some(None), Some(None)),
            (Some(None), None),
            (None, c()),
            (None, Some(None)),
        ];
        candidates.into_iter().find_map(|(user_part, client_part)| {
            let entity = Entity {
                user: user_part,
                client_id: client_part,
            };
            let v = *entries.get(&entity)?.get(key)?;
            // Each client of a default entity gets its own quota: key the usage by the concrete names.
            let usage = Entity {
                user: entity.user.as_ref().map(|_| Some(user.to_string())),
                client_id: entity
                    .client_id
                    .as_ref()
                    .map(|_| Some(client_id.to_string())),
            };
            Some((usage, v))
        })
    }
}

impl crate::cluster::documents::SharedDocument for QuotaStore {
    fn document(&self) -> String {
        "client-quotas".into()
    }

    fn export(&self) -> Result<String, QuotaStoreError> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        serde_json::to_string(&file_of(&entries))
            .map_err(|e| crate::metadata_file::document_write_error("client-quotas", e))
    }

    fn install(&self, body: &str) -> Result<(), QuotaStoreError> {
        let file: QuotaFile = serde_json::from_str(body)
            .map_err(|e| crate::metadata_file::document_read_error("client-quotas", e))?;
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        crate::metadata_file::save(&self.path, &file, false)?;
        *entries = entries_of(file);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(user: Option<Option<&str>>, client: Option<Option<&str>>) -> Entity {
        Entity {
            user: user.map(|u| u.map(String::from)),
            client_id: client.map(|c| c.map(String::from)),
        }
    }

    #[test]
    fn precedence_and_durability() {
        let dir = tempfile::tempdir().unwrap();
        let s = QuotaStore::open(dir.path()).unwrap();
        let set = |e: Entity, v: f64| (e, vec![("producer_byte_rate".to_string(), Some(v))]);
        s.alter(vec![
            set(entity(None, Some(None)), 1.0),
            set(entity(None, Some(Some("app"))), 2.0),
            set(entity(Some(None), None), 3.0),
            set(entity(Some(Some("alice")), None), 4.0),
            set(entity(Some(Some("alice")), Some(Some("app"))), 5.0),
        ])
        .unwrap();
        let v = |u: &str, c: &str| s.resolve(u, c, "producer_byte_rate").map(|(_, v)| v);
        assert_eq!(v("alice", "app"), Some(5.0));
        assert_eq!(v("alice", "other"), Some(4.0));
        assert_eq!(v("bob", "app"), Some(3.0));
        let reopened = QuotaStore::open(dir.path()).unwrap();
        assert_eq!(reopened.all().len(), 5);
        reopened
            .alter(vec![(
                entity(Some(None), None),
                vec![("producer_byte_rate".into(), None)],
            )])
            .unwrap();
        assert_eq!(
            reopened
                .resolve("bob", "app", "producer_byte_rate")
                .map(|(_, v)| v),
            Some(2.0)
        );
        assert_eq!(
            reopened
                .resolve("bob", "x", "producer_byte_rate")
                .map(|(_, v)| v),
            Some(1.0)
        );
        assert_eq!(reopened.resolve("bob", "x", "consumer_byte_rate"), None);
    }
}
