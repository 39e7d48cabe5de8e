//! The broker's small JSON metadata files (ACLs, SCRAM credentials, client quotas): read whole when the
//! broker opens (absent means empty), replaced atomically on every change so a crash leaves the old or the
//! new content, never a torn file.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum MetadataFileError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
}

pub fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T, MetadataFileError> {
    let err = |reason: String| MetadataFileError::Read {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| err(e.to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(T::default()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Writes `value`; `private` files (credentials) are readable by the broker's user only.
pub fn save<T: Serialize>(path: &Path, value: &T, private: bool) -> Result<(), MetadataFileError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |reason: String| MetadataFileError::Write {
        path: path.display().to_string(),
        reason,
    };
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| err(e.to_string()))?;
    runnel_storage::atomic_file::write(path, &bytes).map_err(|e| err(e.to_string()))?;
    if private {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// A failure reading a cluster's copy of one of these files (kept in the metadata database).
pub fn document_read_error(document: &str, reason: impl ToString) -> MetadataFileError {
    MetadataFileError::Read {
        path: format!("the cluster's {document} document"),
        reason: reason.to_string(),
    }
}

/// A failure writing a cluster's copy of one of these files.
pub fn document_write_error(document: &str, reason: impl ToString) -> MetadataFileError {
    MetadataFileError::Write {
        path: format!("the cluster's {document} document"),
        reason: reason.to_string(),
    }
}
