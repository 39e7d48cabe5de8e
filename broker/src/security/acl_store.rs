//! The ACLs, durable like the topic catalog (one JSON file in the data directory, replaced atomically on
//! every change), and the authorizer that reads them on every request. Off unless `authorizer.class.name`
//! is set (Kafka's StandardAuthorizer / AclAuthorizer names, or `runnel`), as in Kafka.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use super::acl::{AclBinding, AclFilter, AclSet, Authorizer, Decision, Operation, ResourceType};
use super::Principal;

pub const ACL_FILE: &str = "acls.json";

/// The names `authorizer.class.name` accepts.
const AUTHORIZER_NAMES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "runnel",
    "acl",
];

#[derive(Debug, thiserror::Error)]
pub enum AclStoreError {
    #[error(transparent)]
    File(#[from] crate::metadata_file::MetadataFileError),
    #[error("authorizer.class.name = '{0}' is not an authorizer Runnel has (use org.apache.kafka.metadata.authorizer.StandardAuthorizer)")]
    UnknownAuthorizer(String),
}

pub struct AclStore {
    path: PathBuf,
    acls: RwLock<AclSet>,
    /// `None`: no authorizer configured, everything allowed (Kafka's default).
    authorizer: Option<Authorizer>,
}

impl AclStore {
    pub fn open(
        data_dir: &Path,
        authorizer_class: &str,
        super_users: &str,
        allow_everyone_if_no_acl_found: bool,
    ) -> Result<Self, AclStoreError> {
        let class = authorizer_class.trim();
        let authorizer = if class.is_empty() {
            None
        } else if AUTHORIZER_NAMES
            .iter()
            .any(|n| n.eq_ignore_ascii_case(class))
        {
            Some(Authorizer::new(super_users, allow_everyone_if_no_acl_found))
        } else {
            return Err(AclStoreError::UnknownAuthorizer(class.to_string()));
        };
        let path = data_dir.join(ACL_FILE);
        let acls = crate::metadata_file::load(&path)?;
        Ok(AclStore {
            path,
            acls: RwLock::new(acls),
            authorizer,
        })
    }

    pub fn enabled(&self) -> bool {
        self.authorizer.is_some()
    }

    pub fn authorize(
        &self,
        principal: &Principal,
        host: IpAddr,
        op: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(authorizer) = &self.authorizer else {
            return true;
        };
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        let decision =
            authorizer.authorize(&acls, &principal.to_string(), host, op, resource_type, name);
        if matches!(decision, Decision::Deny) {
            tracing::debug!(%principal, %host, ?op, ?resource_type, resource = name, "denied");
        }
        matches!(decision, Decision::Allow)
    }

    pub fn matching(&self, filter: &AclFilter) -> Vec<AclBinding> {
        self.acls
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .matching(filter)
    }

    /// Adds bindings and writes the set once; a failed write leaves memory as it was.
    pub fn add(&self, bindings: Vec<AclBinding>) -> Result<(), AclStoreError> {
        let mut acls = self.acls.write().unwrap_or_else(|p| p.into_inner());
        let mut next = acls.clone();
        for b in bindings {
            next.add(b);
        }
        self.save(&next)?;
        *acls = next;
        Ok(())
    }

    /// Removes what each filter matches; returns the removed bindings per filter.
    pub fn remove(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, AclStoreError> {
        let mut acls = self.acls.write().unwrap_or_else(|p| p.into_inner());
        let mut next = acls.clone();
        let removed: Vec<_> = filters.iter().map(|f| next.remove_matching(f)).collect();
        if removed.iter().any(|r| !r.is_empty()) {
            self.save(&next)?;
            *acls = next;
        }
        Ok(removed)
    }

    fn save(&self, acls: &AclSet) -> Result<(), AclStoreError> {
        Ok(crate::metadata_file::save(&self.path, acls, false)?)
    }
}

impl crate::cluster::documents::SharedDocument for AclStore {
    fn document(&self) -> String {
        "acls".into()
    }

    fn export(&self) -> Result<String, crate::metadata_file::MetadataFileError> {
        let acls = self.acls.read().unwrap_or_else(|p| p.into_inner());
        serde_json::to_string(&*acls)
            .map_err(|e| crate::metadata_file::document_write_error("acls", e))
    }

    fn install(&self, body: &str) -> Result<(), crate::metadata_file::MetadataFileError> {
        let next: AclSet = serde_json::from_str(body)
            .map_err(|e| crate::metadata_file::document_read_error("acls", e))?;
        let mut acls = self.acls.write().unwrap_or_else(|p| p.into_inner());
        crate::metadata_file::save(&self.path, &next, false)?;
        *acls = next;
        Ok(())
    }
}
