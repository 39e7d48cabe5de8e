//! The object store holding record data in cluster mode: an S3-compatible bucket under a prefix
//! (`s3://BUCKET/PREFIX`), configured the usual way (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ALLOW_HTTP`, ... from the environment, or the same settings
//! given as `s3.*` keys). Objects are written once under a fresh name and never changed, so a reader
//! never sees a half-written object and a retried upload cannot clobber another.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum ObjectStorageError {
    #[error("storage URL {0}: expected s3://BUCKET/PREFIX")]
    BadUrl(String),
    #[error("object storage: {0}")]
    Store(#[from] object_store::Error),
    #[error("object storage at {url} is not usable: {reason}")]
    Probe { url: String, reason: String },
}

/// Where one object lives, relative to the configured prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey(pub String);

pub struct ObjectStorage {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ObjectStorage {
    /// `url` is `s3://BUCKET/PREFIX`; `settings` are object_store's S3 keys (`aws_endpoint_url`,
    /// `aws_allow_http`, ...) given in the broker config, applied over the environment.
    pub fn open(url: &str, settings: &[(String, String)]) -> Result<Self, ObjectStorageError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| ObjectStorageError::BadUrl(url.to_string()))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ObjectStorageError::BadUrl(url.to_string()));
        }
        // reqwest is built without a default TLS provider (aws-lc-rs needs cmake and a C build): use ring,
        // as the broker's own TLS does. Installing twice is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, value) in settings {
            let key = key
                .parse()
                .map_err(|e: object_store::Error| ObjectStorageError::Probe {
                    url: url.to_string(),
                    reason: e.to_string(),
                })?;
            builder = builder.with_config(key, value);
        }
        Ok(ObjectStorage {
            url: url.to_string(),
            store: Arc::new(builder.build()?),
            prefix: Path::from(prefix.trim_matches('/')),
        })
    }

    /// The key's segments under the prefix (`Path::join` takes one segment: a `/` in it would be encoded).
    fn path(&self, key: &ObjectKey) -> Path {
        key.0
            .split('/')
            .fold(self.prefix.clone(), |path, segment| path.join(segment))
    }

    /// Uploads `bytes` as a new object and returns its key.
    pub async fn put_new(&self, bytes: Bytes) -> Result<ObjectKey, ObjectStorageError> {
        self.put_named(&Uuid::new_v4().to_string(), bytes).await
    }

    /// Uploads `bytes` as `objects/NAME` (NAME made unique by the caller); the orphan collector sees it
    /// like any upload until a committed row names it.
    pub async fn put_named(
        &self,
        name: &str,
        bytes: Bytes,
    ) -> Result<ObjectKey, ObjectStorageError> {
        let key = ObjectKey(format!("objects/{name}"));
        self.store
            .put(&self.path(&key), PutPayload::from_bytes(bytes))
            .await?;
        Ok(key)
    }

    pub async fn get_range(
        &self,
        key: &ObjectKey,
        range: Range<u64>,
    ) -> Result<Bytes, ObjectStorageError> {
        Ok(self.store.get_range(&self.path(key), range).await?)
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<(), ObjectStorageError> {
        Ok(self.store.delete(&self.path(key)).await?)
    }

    /// Every uploaded object, with its age in milliseconds (by the store's clock against this machine's).
    pub async fn list_uploads(&self) -> Result<Vec<(ObjectKey, i64)>, ObjectStorageError> {
        let dir = self.prefix.clone().join("objects");
        let listed = self.store.list_with_delimiter(Some(&dir)).await?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Ok(listed
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_string();
                let age = now.saturating_sub(meta.last_modified.timestamp_millis());
                Some((ObjectKey(format!("objects/{name}")), age))
            })
            .collect())
    }

    /// Writes, reads back and deletes a small object, so a wrong endpoint, bucket or credential stops the
    /// broker at start with the store's own message rather than failing the first produce.
    pub async fn probe(&self) -> Result<(), ObjectStorageError> {
        let fail = |reason: String| ObjectStorageError::Probe {
            url: self.url.clone(),
            reason,
        };
        let marker = Bytes::from(format!("runnel probe {}", Uuid::new_v4()));
        let key = self
            .put_new(marker.clone())
            .await
            .map_err(|e| fail(format!("upload: {e}")))?;
        let len = marker.len() as u64;
        let back = self
            .get_range(&key, 0..len)
            .await
            .map_err(|e| fail(format!("read back: {e}")))?;
        self.delete(&key)
            .await
            .map_err(|e| fail(format!("delete: {e}")))?;
        if back != marker {
            return Err(fail(
                "an object read back differs from what was written".into(),
            ));
        }
        Ok(())
    }
}
