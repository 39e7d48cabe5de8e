//! Offset commits and committed-offset lookups for the consumer's group (or simple commits).

use super::*;

/// One OffsetCommit for a group member (or a simple commit with generation -1).
pub(crate) async fn send_commit(
    cluster: &Cluster,
    meta: &GroupMetadata,
    offsets: &[(String, i32, i64)],
) -> Result<()> {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_leader_epoch(-1)
            .with_committed_metadata(Some(sb("")));
        match topics.iter_mut().find(|x| x.name.as_str() == t) {
            Some(x) => x.partitions.push(part),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(sb(t)))
                    .with_partitions(vec![part]),
            ),
        }
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(sb(&meta.group_id)))
        .with_generation_id_or_member_epoch(meta.generation)
        .with_member_id(sb(&meta.member_id))
        .with_group_instance_id(meta.instance_id.as_deref().map(sb))
        .with_retention_time_ms(-1)
        .with_topics(topics);
    let conn = cluster
        .coordinator(&meta.group_id, CoordinatorType::Group)
        .await?;
    let resp = conn.call(&req).await?;
    for t in &resp.topics {
        for p in &t.partitions {
            if p.error_code != 0 {
                return Err(ClientError::kafka(
                    format!("OffsetCommit {}-{}", t.name.as_str(), p.partition_index),
                    p.error_code,
                ));
            }
        }
    }
    Ok(())
}

impl Consumer {
    /// Committed offsets of the group for these partitions (-1 where none).
    pub async fn committed(
        &self,
        parts: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        let group = self
            .config
            .group_id
            .clone()
            .ok_or_else(|| ClientError::Invalid("no group.id".into()))?;
        let mut topics: Vec<OffsetFetchRequestTopic> = Vec::new();
        for (t, p) in parts {
            match topics.iter_mut().find(|x| x.name.as_str() == t) {
                Some(x) => x.partition_indexes.push(*p),
                None => topics.push(
                    OffsetFetchRequestTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partition_indexes(vec![*p]),
                ),
            }
        }
        let req = OffsetFetchRequest::default()
            .with_group_id(GroupId(sb(&group)))
            .with_topics(Some(topics))
            .with_require_stable(self.config.isolation == IsolationLevel::ReadCommitted);
        let mut attempt = 0;
        loop {
            let conn = self
                .cluster
                .coordinator(&group, CoordinatorType::Group)
                .await?;
            let resp = conn.call(&req).await?;
            let code = if resp.error_code != 0 {
                resp.error_code
            } else {
                resp.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .map(|p| p.error_code)
                    .find(|c| *c != 0)
                    .unwrap_or(0)
            };
            if code == 0 {
                return Ok(resp
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions.iter().map(move |p| {
                            ((t.name.to_string(), p.partition_index), p.committed_offset)
                        })
                    })
                    .collect());
            }
            let err = ClientError::kafka("OffsetFetch", code);
            attempt += 1;
            if !err.is_retriable() || attempt > 50 {
                return Err(err);
            }
            tokio::time::sleep(self.cluster.config.retry_backoff).await;
        }
    }

    /// The position of every assigned partition, as offsets to commit.
    fn current_offsets(&self) -> Vec<(String, i32, i64)> {
        self.assignment
            .iter()
            .filter_map(|tp| self.positions.get(tp).map(|o| (tp.0.clone(), tp.1, *o)))
            .collect()
    }

    /// Commits the current positions with the current membership, as they are (used inside a rebalance).
    pub(super) async fn commit_current(&self) -> Result<()> {
        let offsets = self.current_offsets();
        match self.group_metadata() {
            Some(meta) if !offsets.is_empty() => send_commit(&self.cluster, &meta, &offsets).await,
            _ => Ok(()),
        }
    }

    /// Commits the current positions of every assigned partition.
    pub async fn commit_sync(&mut self) -> Result<()> {
        let offsets = self.current_offsets();
        self.commit_offsets(&offsets).await
    }

    /// Commits explicit offsets (the next offset to read, as in Kafka).
    pub async fn commit_offsets(&mut self, offsets: &[(String, i32, i64)]) -> Result<()> {
        self.last_commit = Instant::now();
        if offsets.is_empty() {
            return Ok(());
        }
        if self.joining.is_some() {
            // Commit with the membership the rebalance in progress ends in, not without one.
            self.ensure_membership(Instant::now() + self.config.session_timeout)
                .await?;
        }
        let meta = self
            .group_metadata()
            .ok_or_else(|| ClientError::Invalid("commit needs a group.id".into()))?;
        let result = send_commit(&self.cluster, &meta, offsets).await;
        let stale = [
            ResponseError::IllegalGeneration.code(),
            ResponseError::UnknownMemberId.code(),
            ResponseError::RebalanceInProgress.code(),
        ];
        if result
            .as_ref()
            .err()
            .and_then(ClientError::code)
            .is_some_and(|c| stale.contains(&c))
        {
            if let Some(g) = &self.group {
                g.request_rejoin();
            }
        }
        result
    }

    /// Fire-and-forget commit of the current positions; a failure is logged.
    pub fn commit_async(&self) {
        let offsets = self.current_offsets();
        let Some(meta) = self.group_metadata() else {
            return;
        };
        let cluster = Arc::clone(&self.cluster);
        tokio::spawn(async move {
            if let Err(e) = send_commit(&cluster, &meta, &offsets).await {
                tracing::warn!(error = %e, "async commit failed");
            }
        });
    }
}
