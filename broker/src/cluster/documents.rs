//! The cluster's small metadata documents in `runnel_documents`: ACLs, SCRAM credentials, client quotas and
//! dynamic broker configs, each the JSON body a standalone broker keeps in a file of its data directory. A
//! change is one database transaction that locks the row, installs the newest body, applies the change in
//! memory (and the local file), writes the result back with the next version and tells the
//! `runnel_documents` channel; every other broker installs the new version on that notification (and a
//! periodic re-read covers a lost one). The first broker to find a document missing seeds it with its
//! local file, so users made offline with `runnel users` before a cluster's first start still log in.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio_postgres::GenericClient;

use crate::metadata_file::MetadataFileError;

pub const CHANNEL: &str = "runnel_documents";

/// A metadata store whose content a cluster shares.
pub trait SharedDocument {
    /// The document's row name.
    fn document(&self) -> String;
    /// The current content, as it is stored.
    fn export(&self) -> Result<String, MetadataFileError>;
    /// Replaces the content with what the database holds (writing the local file as a cache).
    fn install(&self, body: &str) -> Result<(), MetadataFileError>;
}

/// The version of each document this broker installed last.
#[derive(Default)]
pub struct Documents {
    installed: Mutex<HashMap<String, i64>>,
}

fn db_error(name: &str, reason: String) -> MetadataFileError {
    crate::metadata_file::document_write_error(name, reason)
}

impl Documents {
    fn installed(&self, name: &str) -> Option<i64> {
        let installed = self.installed.lock().unwrap_or_else(|p| p.into_inner());
        installed.get(name).copied()
    }

    fn note(&self, name: &str, version: Option<i64>) {
        let mut installed = self.installed.lock().unwrap_or_else(|p| p.into_inner());
        match version {
            Some(v) => installed.insert(name.to_string(), v),
            None => installed.remove(name),
        };
    }

    /// The row's body and version, seeding it with the local content when no broker has yet.
    async fn row(
        client: &impl GenericClient,
        doc: &(impl SharedDocument + ?Sized),
        lock: bool,
    ) -> Result<(String, i64), MetadataFileError> {
        let name = doc.document();
        let err = |e: tokio_postgres::Error| db_error(&name, super::db::describe(&e));
        let select = if lock {
            "SELECT body, version FROM runnel_documents WHERE name = $1 FOR UPDATE"
        } else {
            "SELECT body, version FROM runnel_documents WHERE name = $1"
        };
        if let Some(row) = client.query_opt(select, &[&name]).await.map_err(err)? {
            return Ok((row.get(0), row.get(1)));
        }
        client
            .execute(
                "INSERT INTO runnel_documents (name, body) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&name, &doc.export()?],
            )
            .await
            .map_err(err)?;
        let row = client.query_one(select, &[&name]).await.map_err(err)?;
        Ok((row.get(0), row.get(1)))
    }

    /// Installs the database's version of `doc` if this broker holds an older one; true when it did.
    pub async fn follow(
        &self,
        client: &impl GenericClient,
        doc: &(impl SharedDocument + ?Sized),
    ) -> Result<bool, MetadataFileError> {
        let name = doc.document();
        let (body, version) = Self::row(client, doc, false).await?;
        if self.installed(&name) == Some(version) {
            return Ok(false);
        }
        doc.install(&body)?;
        self.note(&name, Some(version));
        Ok(true)
    }

    /// Applies `change` to the newest version of `doc` and stores the result for every broker. The row
    /// stays locked from read to write, so changes made at once through different brokers all land.
    pub async fn update<R, E: From<MetadataFileError>>(
        &self,
        url: &str,
        doc: &(impl SharedDocument + ?Sized),
        change: impl FnOnce() -> Result<R, E>,
    ) -> Result<R, E> {
        let name = doc.document();
        let err = |e: tokio_postgres::Error| db_error(&name, super::db::describe(&e));
        let mut client = super::connect(url)
            .await
            .map_err(|e| db_error(&name, e.to_string()))?;
        let tx = client.transaction().await.map_err(err)?;
        let (before, version) = Self::row(&tx, doc, true).await?;
        if self.installed(&name) != Some(version) {
            doc.install(&before)?;
            self.note(&name, Some(version));
        }
        let out = change()?;
        let written = async {
            let body = doc.export()?;
            tx.execute(
                "UPDATE runnel_documents SET body = $2, version = version + 1 WHERE name = $1",
                &[&name, &body],
            )
            .await
            .map_err(err)?;
            tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &name])
                .await
                .map_err(err)?;
            tx.commit().await.map_err(err)
        }
        .await;
        match written {
            Ok(()) => {
                self.note(&name, Some(version + 1));
                Ok(out)
            }
            Err(e) => {
                // Memory holds a change the cluster does not: back to what it does hold.
                self.note(&name, None);
                if let Err(undo) = doc.install(&before) {
                    tracing::warn!(document = %name, error = %undo, "cannot restore a document");
                }
                Err(e.into())
            }
        }
    }
}
