//! SCRAM credentials, stored as Kafka stores them: salt, StoredKey, ServerKey and iterations per user and
//! mechanism, never the password. One JSON file in the data directory, replaced atomically and readable
//! by the broker's user only; both the online APIs (AlterUserScramCredentials) and `runnel users` write it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use super::sasl::{ScramCredential, ScramMechanism};

pub const CREDENTIALS_FILE: &str = "scram-credentials.json";

pub use crate::metadata_file::MetadataFileError as CredentialError;

#[derive(Default, Serialize, Deserialize)]
struct CredentialFile {
    /// user → mechanism name → credential
    users: BTreeMap<String, BTreeMap<String, ScramCredential>>,
}

pub struct CredentialStore {
    path: PathBuf,
    file: RwLock<CredentialFile>,
}

impl CredentialStore {
    pub fn open(data_dir: &Path) -> Result<Self, CredentialError> {
        let path = data_dir.join(CREDENTIALS_FILE);
        let file = crate::metadata_file::load(&path)?;
        Ok(CredentialStore {
            path,
            file: RwLock::new(file),
        })
    }

    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<ScramCredential> {
        let file = self.file.read().unwrap_or_else(|p| p.into_inner());
        file.users.get(user)?.get(mechanism.name()).cloned()
    }

    /// Every credential of a user (PLAIN checks a password against any of them).
    pub fn all_for(&self, user: &str) -> Option<Vec<ScramCredential>> {
        let file = self.file.read().unwrap_or_else(|p| p.into_inner());
        let creds: Vec<_> = file.users.get(user)?.values().cloned().collect();
        (!creds.is_empty()).then_some(creds)
    }

    /// Users and, per user, their mechanisms with iteration counts.
    pub fn list(&self) -> Vec<(String, Vec<(ScramMechanism, u32)>)> {
        let file = self.file.read().unwrap_or_else(|p| p.into_inner());
        file.users
            .iter()
            .map(|(u, m)| {
                let mechs = m.values().map(|c| (c.mechanism, c.iterations)).collect();
                (u.clone(), mechs)
            })
            .collect()
    }

    /// Applies a batch of changes and writes them once: `Some(credential)` sets, `None` deletes.
    /// Returns, per change, whether it found something to delete (always true for sets).
    pub fn apply(
        &self,
        changes: Vec<(String, ScramMechanism, Option<ScramCredential>)>,
    ) -> Result<Vec<bool>, CredentialError> {
        let mut file = self.file.write().unwrap_or_else(|p| p.into_inner());
        let mut outcomes = Vec::with_capacity(changes.len());
        for (user, mech, cred) in changes {
            match cred {
                Some(c) => {
                    file.users
                        .entry(user)
                        .or_default()
                        .insert(mech.name().to_string(), c);
                    outcomes.push(true);
                }
                None => {
                    let found = file
                        .users
                        .get_mut(&user)
                        .and_then(|m| m.remove(mech.name()))
                        .is_some();
                    if file.users.get(&user).is_some_and(BTreeMap::is_empty) {
                        file.users.remove(&user);
                    }
                    outcomes.push(found);
                }
            }
        }
        self.save(&file)?;
        Ok(outcomes)
    }

    fn save(&self, file: &CredentialFile) -> Result<(), CredentialError> {
        crate::metadata_file::save(&self.path, file, true)
    }
}

impl crate::cluster::documents::SharedDocument for CredentialStore {
    fn document(&self) -> String {
        "scram-credentials".into()
    }

    fn export(&self) -> Result<String, CredentialError> {
        let file = self.file.read().unwrap_or_else(|p| p.into_inner());
        serde_json::to_string(&*file)
            .map_err(|e| crate::metadata_file::document_write_error("scram-credentials", e))
    }

    fn install(&self, body: &str) -> Result<(), CredentialError> {
        let next: CredentialFile = serde_json::from_str(body)
            .map_err(|e| crate::metadata_file::document_read_error("scram-credentials", e))?;
        let mut file = self.file.write().unwrap_or_else(|p| p.into_inner());
        self.save(&next)?;
        *file = next;
        Ok(())
    }
}
