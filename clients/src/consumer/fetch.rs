//! Positions and fetches: ListOffsets for partitions without a position, Fetch from each leader in parallel.

use super::*;

/// ListOffsets for partitions at a timestamp (-1 latest, -2 earliest): (offset, timestamp) each.
pub async fn list_offsets(
    cluster: &Cluster,
    parts: &[TopicPartition],
    timestamp: i64,
    isolation: IsolationLevel,
) -> Result<HashMap<TopicPartition, (i64, i64)>> {
    let mut by_leader: HashMap<String, (Arc<Connection>, Vec<TopicPartition>)> = HashMap::new();
    for tp in parts {
        let conn = cluster.leader(&tp.0, tp.1).await?;
        by_leader
            .entry(conn.addr().to_string())
            .or_insert_with(|| (conn, Vec::new()))
            .1
            .push(tp.clone());
    }
    let isolation = i8::from(isolation == IsolationLevel::ReadCommitted);
    let mut out = HashMap::new();
    for (_, (conn, tps)) in by_leader {
        let mut topics: Vec<ListOffsetsTopic> = Vec::new();
        for (t, p) in &tps {
            let part = ListOffsetsPartition::default()
                .with_partition_index(*p)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp);
            match topics.iter_mut().find(|x| x.name.as_str() == t) {
                Some(x) => x.partitions.push(part),
                None => topics.push(
                    ListOffsetsTopic::default()
                        .with_name(TopicName(sb(t)))
                        .with_partitions(vec![part]),
                ),
            }
        }
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(isolation)
            .with_topics(topics);
        let resp = conn.call(&req).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(ClientError::kafka(
                        format!("ListOffsets {}-{}", t.name.as_str(), p.partition_index),
                        p.error_code,
                    ));
                }
                out.insert(
                    (t.name.to_string(), p.partition_index),
                    (p.offset, p.timestamp),
                );
            }
        }
    }
    Ok(out)
}

impl Consumer {
    /// Sets a start position for every assigned partition that has none: committed offset, else reset policy.
    pub(super) async fn resolve_positions(&mut self) -> Result<()> {
        let missing: Vec<TopicPartition> = self
            .assignment
            .iter()
            .filter(|tp| !self.fetch_positions.contains_key(*tp))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let committed = if self.config.group_id.is_some() {
            self.committed(&missing).await?
        } else {
            HashMap::new()
        };
        let mut reset = Vec::new();
        for tp in missing {
            match committed.get(&tp) {
                Some(&o) if o >= 0 => {
                    self.fetch_positions.insert(tp.clone(), o);
                    self.positions.insert(tp, o);
                }
                _ => reset.push(tp),
            }
        }
        if reset.is_empty() {
            return Ok(());
        }
        let ts = match self.config.auto_offset_reset {
            OffsetReset::Earliest => -2,
            OffsetReset::Latest => -1,
            OffsetReset::None => {
                return Err(ClientError::Invalid(format!(
                    "no committed offset for {reset:?} and auto.offset.reset=none"
                )))
            }
        };
        let found = self.list_offsets(&reset, ts).await?;
        for (tp, (o, _)) in found {
            self.fetch_positions.insert(tp.clone(), o);
            self.positions.insert(tp, o);
        }
        Ok(())
    }

    /// ListOffsets for partitions at a timestamp (-1 latest, -2 earliest): (offset, timestamp) each.
    pub async fn list_offsets(
        &self,
        parts: &[TopicPartition],
        timestamp: i64,
    ) -> Result<HashMap<TopicPartition, (i64, i64)>> {
        list_offsets(&self.cluster, parts, timestamp, self.config.isolation).await
    }

    pub(super) async fn fetch(&mut self, max_wait: Duration) -> Result<()> {
        let parts = self.fetchable();
        if parts.is_empty() {
            return Ok(());
        }
        let mut by_leader: HashMap<String, (Arc<Connection>, Vec<TopicPartition>)> = HashMap::new();
        for tp in parts {
            match self.cluster.leader(&tp.0, tp.1).await {
                Ok(conn) => by_leader
                    .entry(conn.addr().to_string())
                    .or_insert_with(|| (conn, Vec::new()))
                    .1
                    .push(tp),
                Err(e) => {
                    tracing::debug!(topic = %tp.0, partition = tp.1, error = %e, "no leader yet")
                }
            }
        }
        let read_committed = self.config.isolation == IsolationLevel::ReadCommitted;
        let mut tasks = tokio::task::JoinSet::new();
        for (_, (conn, tps)) in by_leader {
            let mut topics: Vec<FetchTopic> = Vec::new();
            for (t, p) in &tps {
                let part = FetchPartition::default()
                    .with_partition(*p)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(
                        self.fetch_positions
                            .get(&(t.clone(), *p))
                            .copied()
                            .unwrap_or(0),
                    )
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(self.config.max_partition_fetch_bytes);
                match topics.iter_mut().find(|x| x.topic.as_str() == t) {
                    Some(x) => x.partitions.push(part),
                    None => topics.push(
                        FetchTopic::default()
                            .with_topic(TopicName(sb(t)))
                            .with_partitions(vec![part]),
                    ),
                }
            }
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(max_wait.as_millis() as i32)
                .with_min_bytes(self.config.fetch_min_bytes)
                .with_max_bytes(self.config.fetch_max_bytes)
                .with_isolation_level(i8::from(read_committed))
                .with_session_epoch(-1)
                .with_topics(topics);
            tasks.spawn(async move { conn.call(&req).await });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok(result) = joined else { continue };
            let resp = match result {
                Ok(r) => r,
                Err(e) if e.is_retriable() => {
                    tracing::debug!(error = %e, "fetch failed; retrying on the next poll");
                    continue;
                }
                Err(e) => return Err(e),
            };
            for t in &resp.responses {
                let topic = t.topic.to_string();
                for p in &t.partitions {
                    let tp = (topic.clone(), p.partition_index);
                    let Some(&from) = self.fetch_positions.get(&tp) else {
                        continue;
                    };
                    match p.error_code {
                        0 => {}
                        c if c == ResponseError::OffsetOutOfRange.code() => {
                            tracing::info!(topic = %tp.0, partition = tp.1, from, "offset out of range; resetting");
                            self.fetch_positions.remove(&tp);
                            continue;
                        }
                        c if ResponseError::try_from_code(c).is_some_and(|e| e.is_retriable()) => {
                            self.cluster.invalidate(&topic);
                            continue;
                        }
                        c => return Err(ClientError::kafka(format!("fetch {}-{}", tp.0, tp.1), c)),
                    }
                    let Some(data) = &p.records else { continue };
                    let aborted: Vec<(i64, i64)> = p
                        .aborted_transactions
                        .iter()
                        .flatten()
                        .map(|a| (a.producer_id.0, a.first_offset))
                        .collect();
                    let (records, next) = decode(
                        &topic,
                        p.partition_index,
                        data,
                        from,
                        &aborted,
                        read_committed,
                    )?;
                    if next > from {
                        self.fetch_positions.insert(tp, next);
                    }
                    self.buffer.extend(records);
                }
            }
        }
        Ok(())
    }
}
