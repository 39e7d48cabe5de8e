//! What the client knows about the cluster: its brokers, a connection to each (made on first use), topic
//! metadata (refreshed on demand and when a request says it is stale) and coordinators.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{FindCoordinatorRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::Mutex;

use crate::config::ClientConfig;
use crate::connection::{Connection, InProcess};
use crate::error::{ClientError, Result};

#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub leader: i32,
    pub error: i16,
}

#[derive(Debug, Clone)]
pub struct TopicInfo {
    pub id: uuid::Uuid,
    pub internal: bool,
    pub partitions: Vec<PartitionInfo>,
}

#[derive(Default)]
struct Metadata {
    brokers: HashMap<i32, String>,
    topics: HashMap<String, TopicInfo>,
    controller: i32,
    cluster_id: Option<String>,
}

pub struct Cluster {
    pub config: ClientConfig,
    conns: Mutex<HashMap<String, Arc<Connection>>>,
    meta: std::sync::RwLock<Metadata>,
    /// Set when the broker runs in this process (co-located jobs): every broker is reached through it.
    in_process: Option<Arc<dyn InProcess>>,
}

/// Which coordinator to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoordinatorType {
    Group = 0,
    Transaction = 1,
}

impl Cluster {
    /// Connects to the first reachable bootstrap broker and loads the broker list. Fails with a clear
    /// error when none answers within the request timeout.
    pub async fn connect(config: ClientConfig) -> Result<Arc<Cluster>> {
        Self::open(config, None).await
    }

    /// A cluster whose broker runs in this process: requests go to `broker` without a socket.
    pub async fn connect_in_process(
        config: ClientConfig,
        broker: Arc<dyn InProcess>,
    ) -> Result<Arc<Cluster>> {
        Self::open(config, Some(broker)).await
    }

    async fn open(
        config: ClientConfig,
        in_process: Option<Arc<dyn InProcess>>,
    ) -> Result<Arc<Cluster>> {
        let cluster = Arc::new(Cluster {
            config,
            conns: Mutex::new(HashMap::new()),
            meta: std::sync::RwLock::new(Metadata::default()),
            in_process,
        });
        cluster.bootstrap().await?;
        cluster.refresh(&[]).await?;
        Ok(cluster)
    }

    async fn bootstrap(&self) -> Result<Arc<Connection>> {
        let addrs = self.config.bootstrap_addrs();
        if addrs.is_empty() {
            return Err(ClientError::Invalid("empty bootstrap server list".into()));
        }
        let deadline = Instant::now() + self.config.request_timeout;
        let mut last = String::new();
        loop {
            for addr in &addrs {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                match Connection::open(
                    addr,
                    &self.config.client_id,
                    left.min(self.config.request_timeout),
                    &self.config.security,
                    self.in_process_for(addr),
                )
                .await
                {
                    Ok(c) => {
                        self.conns.lock().await.insert(addr.clone(), Arc::clone(&c));
                        return Ok(c);
                    }
                    // Wrong credentials stay wrong: report them now, not after the timeout.
                    Err(e @ ClientError::Authentication(_)) => return Err(e),
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() + self.config.retry_backoff >= deadline {
                return Err(ClientError::Unreachable {
                    bootstrap: self.config.bootstrap.clone(),
                    timeout_ms: self.config.request_timeout.as_millis() as u64,
                    reason: last,
                });
            }
            tokio::time::sleep(self.config.retry_backoff).await;
        }
    }

    async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(addr) {
            if c.is_alive() {
                return Ok(Arc::clone(c));
            }
        }
        let c = Connection::open(
            addr,
            &self.config.client_id,
            self.config.request_timeout,
            &self.config.security,
            self.in_process_for(addr),
        )
        .await?;
        conns.insert(addr.to_string(), Arc::clone(&c));
        Ok(c)
    }

    /// A connection to any broker (a known one, else a bootstrap address).
    pub async fn any(&self) -> Result<Arc<Connection>> {
        {
            let conns = self.conns.lock().await;
            if let Some(c) = conns.values().find(|c| c.is_alive()) {
                return Ok(Arc::clone(c));
            }
        }
        let known: Vec<String> = self.read_meta(|m| m.brokers.values().cloned().collect());
        for addr in known {
            if let Ok(c) = self.connection_to(&addr).await {
                return Ok(c);
            }
        }
        self.bootstrap().await
    }

    /// A connection to a broker by node id.
    pub async fn broker(&self, node: i32) -> Result<Arc<Connection>> {
        let addr = self.read_meta(|m| m.brokers.get(&node).cloned());
        match addr {
            Some(a) => self.connection_to(&a).await,
            None => {
                self.refresh(&[]).await?;
                let addr = self
                    .read_meta(|m| m.brokers.get(&node).cloned())
                    .ok_or_else(|| ClientError::Protocol(format!("unknown broker {node}")))?;
                self.connection_to(&addr).await
            }
        }
    }

    fn read_meta<T>(&self, f: impl FnOnce(&Metadata) -> T) -> T {
        f(&self.meta.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Reloads metadata for `topics` (all topics when empty) without creating any.
    pub async fn refresh(&self, topics: &[String]) -> Result<()> {
        self.refresh_with(topics, false).await
    }

    /// Reloads metadata, asking the broker to create missing topics when `auto_create` is set.
    pub async fn refresh_with(&self, topics: &[String], auto_create: bool) -> Result<()> {
        let conn = self.any().await?;
        let req = MetadataRequest::default()
            .with_topics(if topics.is_empty() {
                None
            } else {
                Some(
                    topics
                        .iter()
                        .map(|t| {
                            MetadataRequestTopic::default()
                                .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))
                        })
                        .collect(),
                )
            })
            .with_allow_auto_topic_creation(auto_create);
        let resp = conn.call(&req).await?;
        let mut meta = self.meta.write().unwrap_or_else(|p| p.into_inner());
        meta.brokers = resp
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        meta.controller = resp.controller_id.0;
        meta.cluster_id = resp.cluster_id.as_ref().map(|c| c.to_string());
        if topics.is_empty() {
            meta.topics.clear();
        }
        for t in &resp.topics {
            let Some(name) = &t.name else { continue };
            if t.error_code != 0 {
                meta.topics.remove(name.as_str());
                continue;
            }
            let mut partitions: Vec<(i32, PartitionInfo)> = t
                .partitions
                .iter()
                .map(|p| {
                    (
                        p.partition_index,
                        PartitionInfo {
                            leader: p.leader_id.0,
                            error: p.error_code,
                        },
                    )
                })
                .collect();
            partitions.sort_by_key(|(i, _)| *i);
            meta.topics.insert(
                name.to_string(),
                TopicInfo {
                    id: t.topic_id,
                    internal: t.is_internal,
                    partitions: partitions.into_iter().map(|(_, p)| p).collect(),
                },
            );
        }
        Ok(())
    }

    /// A topic's metadata, loading it if unknown. Err(UnknownTopic) when the cluster does not have it.
    pub async fn topic(&self, name: &str) -> Result<TopicInfo> {
        if let Some(t) = self.read_meta(|m| m.topics.get(name).cloned()) {
            return Ok(t);
        }
        self.refresh(&[name.to_string()]).await?;
        self.read_meta(|m| m.topics.get(name).cloned())
            .ok_or_else(|| ClientError::UnknownTopic(name.to_string()))
    }

    /// Every topic's metadata (a fresh load).
    pub async fn topics(&self) -> Result<HashMap<String, TopicInfo>> {
        self.refresh(&[]).await?;
        Ok(self.read_meta(|m| m.topics.clone()))
    }

    pub fn brokers(&self) -> Vec<(i32, String)> {
        let mut b: Vec<(i32, String)> =
            self.read_meta(|m| m.brokers.iter().map(|(k, v)| (*k, v.clone())).collect());
        b.sort();
        b
    }

    pub fn controller(&self) -> i32 {
        self.read_meta(|m| m.controller)
    }

    pub fn cluster_id(&self) -> Option<String> {
        self.read_meta(|m| m.cluster_id.clone())
    }

    /// Forgets a topic's metadata, so the next use reloads it (after NOT_LEADER and the like).
    pub fn invalidate(&self, topic: &str) {
        self.meta
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .topics
            .remove(topic);
    }

    /// The connection to the leader of a partition.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<Arc<Connection>> {
        let info = self.topic(topic).await?;
        let p = info
            .partitions
            .get(usize::try_from(partition).unwrap_or(usize::MAX))
            .ok_or_else(|| {
                ClientError::kafka(
                    format!("{topic}-{partition}"),
                    ResponseError::UnknownTopicOrPartition.code(),
                )
            })?;
        if p.leader < 0 {
            self.invalidate(topic);
            return Err(ClientError::kafka(
                format!("{topic}-{partition}"),
                ResponseError::LeaderNotAvailable.code(),
            ));
        }
        self.broker(p.leader).await
    }

    /// A connection of its own to the coordinator, as the Java client keeps one: a broker answers one
    /// request per connection at a time, so a JoinGroup waiting for a rebalance must not hold up fetches.
    pub async fn dedicated_coordinator(
        &self,
        key: &str,
        kind: CoordinatorType,
    ) -> Result<Arc<Connection>> {
        let shared = self.coordinator(key, kind).await?;
        Connection::open(
            shared.addr(),
            &self.config.client_id,
            self.config.request_timeout,
            &self.config.security,
            self.in_process_for(shared.addr()),
        )
        .await
    }

    /// The in-process broker answers for its own address only: the other brokers of a cluster (a group's
    /// coordinator elsewhere) are reached over the network like any client reaches them.
    fn in_process_for(&self, addr: &str) -> Option<&Arc<dyn InProcess>> {
        self.in_process
            .as_ref()
            .filter(|_| self.config.bootstrap_addrs().iter().any(|a| a == addr))
    }

    /// The coordinator of a group or transactional id, retrying while it is not available yet.
    pub async fn coordinator(&self, key: &str, kind: CoordinatorType) -> Result<Arc<Connection>> {
        let mut attempt = 0;
        loop {
            let conn = self.any().await?;
            let req = FindCoordinatorRequest::default()
                .with_key(StrBytes::from_string(key.to_string()))
                .with_key_type(kind as i8);
            let resp = conn.call(&req).await?;
            if resp.error_code == 0 {
                return self
                    .connection_to(&format!("{}:{}", resp.host.as_str(), resp.port))
                    .await;
            }
            let err = ClientError::kafka(format!("FindCoordinator({key})"), resp.error_code);
            attempt += 1;
            if !err.is_retriable() || attempt > self.config.retries {
                return Err(err);
            }
            tokio::time::sleep(self.config.retry_backoff).await;
        }
    }
}
