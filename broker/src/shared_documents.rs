//! Cluster mode: the ACLs, SCRAM credentials, client quotas and dynamic broker configs are the cluster's,
//! not one broker's (`cluster::documents`). Changes go through [`Broker::change_shared`]; a follower
//! installs what other brokers changed. On a single node both are the local files alone.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::cluster::documents::SharedDocument;
use crate::cluster::ClusterNode;
use crate::dynamic_config::{Scope, SharedLayer};
use crate::metadata_file::MetadataFileError;

/// How often the documents are read again when no notification came (one may be lost with a connection).
const RESYNC_EVERY: Duration = Duration::from_secs(5);

impl Broker {
    /// Runs `change` against the store behind `doc`: on a cluster with the row locked and the newest
    /// version installed first, the result then stored for every broker.
    pub async fn change_shared<R, E: From<MetadataFileError>>(
        &self,
        doc: &(impl SharedDocument + ?Sized),
        change: impl FnOnce() -> Result<R, E>,
    ) -> Result<R, E> {
        match &self.cluster {
            Some(node) => node.documents.update(node.db.url(), doc, change).await,
            None => change(),
        }
    }

    /// A dynamic layer as the cluster shares it: the default for all brokers, or this broker's own.
    pub fn shared_layer(&self, scope: Scope) -> SharedLayer<'_> {
        SharedLayer {
            configs: &self.dynamic,
            scope,
            node_id: self.node_id,
        }
    }

    /// Installs every document another broker changed since this one last looked.
    pub async fn sync_documents(&self, node: &ClusterNode) -> Result<(), MetadataFileError> {
        let client = node
            .db
            .client()
            .await
            .map_err(|e| crate::metadata_file::document_read_error("metadata", e))?;
        let docs = &node.documents;
        docs.follow(&*client, &self.acls).await?;
        docs.follow(&*client, &self.credentials).await?;
        docs.follow(&*client, &self.quotas.store).await?;
        let mut configs_changed = false;
        for scope in [Scope::ClusterDefault, Scope::Broker] {
            configs_changed |= docs.follow(&*client, &self.shared_layer(scope)).await?;
        }
        if configs_changed {
            self.reapply_topic_configs();
        }
        Ok(())
    }
}

/// Keeps this broker's documents current: on every change heard, and every few seconds.
pub fn spawn_document_follower(broker: &Arc<Broker>, node: Arc<ClusterNode>) {
    let broker = Arc::clone(broker);
    tokio::spawn(async move {
        loop {
            let _ =
                tokio::time::timeout(RESYNC_EVERY, node.watch.documents_changed.notified()).await;
            if let Err(e) = broker.sync_documents(&node).await {
                tracing::warn!(error = %e, "cannot read the cluster's metadata documents; retrying");
            }
        }
    });
}
