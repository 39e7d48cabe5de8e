//! Collecting orphan objects: an upload whose commit failed (or whose broker died between the two) is
//! named by no row and would cost storage for ever. An object older than the grace period and absent from
//! `runnel_objects` is deleted. The grace period must exceed the longest an upload can wait for its
//! commit, or a commit still in flight would lose its object: rounds commit within seconds, so the default
//! is generous.

use std::time::Duration;

use tokio_postgres::GenericClient;

use super::objects::{ObjectStorage, ObjectStorageError};

pub const DEFAULT_GRACE: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum OrphanError {
    #[error("metadata database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Store(#[from] ObjectStorageError),
}

/// Deletes uploads older than `grace` that no committed round names; returns how many.
pub async fn collect(
    store: &ObjectStorage,
    db: &impl GenericClient,
    grace: Duration,
) -> Result<usize, OrphanError> {
    let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
    let old: Vec<String> = store
        .list_uploads()
        .await?
        .into_iter()
        .filter(|(_, age)| *age >= grace_ms)
        .map(|(key, _)| key.0)
        .collect();
    let mut deleted = 0;
    for chunk in old.chunks(1000) {
        let keys: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let known: std::collections::HashSet<String> = db
            .query(
                "SELECT object_key FROM runnel_objects WHERE object_key = ANY($1)",
                &[&keys],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        for key in chunk.iter().filter(|k| !known.contains(*k)) {
            store
                .delete(&super::objects::ObjectKey(key.clone()))
                .await?;
            deleted += 1;
        }
    }
    if deleted > 0 {
        tracing::info!(deleted, "orphan objects collected");
    }
    Ok(deleted)
}
