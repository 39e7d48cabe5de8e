//! The brokers a client is told about, and who answers for what: on a single node, this broker for
//! everything; in a cluster, the live brokers (their addresses on the listener the client came in on),
//! partition "leaders" and coordinators placed over them by rendezvous hashing. Leaders only keep a
//! partition's writes batched on one broker: any broker accepts any partition.

use runnel_storage::TopicMeta;

use crate::broker::Broker;
use crate::cluster::placement::{self, BrokerAddr};
use crate::security::Listener;

/// One partition's place among the brokers, as Metadata and DescribeTopicPartitions report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReplicas {
    pub leader: i32,
    pub replicas: Vec<i32>,
    /// The live replicas: each serves the partition from the shared log.
    pub isr: Vec<i32>,
    /// Named replicas that are not alive.
    pub offline: Vec<i32>,
}

impl Broker {
    /// The brokers to list in Metadata and DescribeCluster, by node id.
    pub fn brokers_for(&self, listener: &Listener) -> Vec<BrokerAddr> {
        let me = BrokerAddr {
            node_id: self.node_id,
            host: listener.advertised_host.clone(),
            port: listener.advertised_port,
            rack: self.config.get("broker.rack").map(str::to_string),
        };
        let Some(node) = &self.cluster else {
            return vec![me];
        };
        // Hosted jobs come in on the internal listener, which no other broker has: they reach the others on
        // each broker's first listener (this broker's internal address is its first listener's too).
        let name = (!listener.is_internal()).then_some(listener.name.as_str());
        let mut live = placement::addresses(&node.live_brokers(), name);
        // This broker answers, so it is alive whatever the last heartbeat read.
        if !live.iter().any(|b| b.node_id == self.node_id) {
            live.push(me);
            live.sort_by_key(|b| b.node_id);
        }
        live
    }

    /// The node ids answers are placed over: every live broker in a cluster, else this one.
    fn placement_nodes(&self) -> Vec<i32> {
        match &self.cluster {
            Some(node) => {
                let mut ids: Vec<i32> = node.live_brokers().iter().map(|b| b.node_id).collect();
                if !ids.contains(&self.node_id) {
                    ids.push(self.node_id);
                }
                ids
            }
            None => vec![self.node_id],
        }
    }

    /// The partition's leader and replicas as Metadata reports them. Replicas named when the partition was
    /// made are listed as named, the first live one leading (the live ones are "in sync": each serves the
    /// partition); otherwise the topic's replication factor of live brokers, ranked by hashing, the first
    /// leading. With none of its named replicas alive a partition is led by the broker hashing picks, as
    /// any broker can serve it.
    pub fn partition_replicas(&self, meta: &TopicMeta, partition: i32) -> PartitionReplicas {
        let live = self.placement_nodes();
        let key = placement::partition_key(meta.id, partition);
        if let Some(named) = meta.assignments.get(&partition).filter(|n| !n.is_empty()) {
            let (isr, offline): (Vec<i32>, Vec<i32>) = named.iter().partition(|n| live.contains(n));
            let leader = match isr.first() {
                Some(&first) => first,
                None => placement::owner(&key, live).unwrap_or(self.node_id),
            };
            let isr = if isr.is_empty() { vec![leader] } else { isr };
            return PartitionReplicas {
                leader,
                replicas: named.clone(),
                isr,
                offline,
            };
        }
        let factor = usize::try_from(meta.replication_factor).unwrap_or(1).max(1);
        let mut replicas = placement::ranked(&key, live);
        replicas.truncate(factor);
        if replicas.is_empty() {
            replicas.push(self.node_id);
        }
        PartitionReplicas {
            leader: replicas[0],
            isr: replicas.clone(),
            replicas,
            offline: Vec::new(),
        }
    }

    /// The broker FindCoordinator names for a group or transactional id (`kind` keeps the two apart).
    pub fn coordinator_node(&self, kind: i8, key: &str) -> i32 {
        let mut k = vec![kind as u8];
        k.extend_from_slice(key.as_bytes());
        placement::owner(&k, self.placement_nodes()).unwrap_or(self.node_id)
    }

    /// KIP-392 for a cluster: the broker a consumer in `client_rack` should fetch the partition from, when
    /// that is not this broker (another zone's broker answering would cost cross-zone traffic). None when
    /// this broker is in the client's rack, the client names none, or no live broker is in it.
    pub fn preferred_read_replica(
        &self,
        topic_id: uuid::Uuid,
        partition: i32,
        client_rack: &str,
    ) -> Option<i32> {
        let node = self.cluster.as_ref()?;
        if client_rack.is_empty() || node.rack.as_deref() == Some(client_rack) {
            return None;
        }
        let in_rack = node
            .live_brokers()
            .into_iter()
            .filter(|b| b.rack.as_deref() == Some(client_rack))
            .map(|b| b.node_id);
        placement::owner(&placement::partition_key(topic_id, partition), in_rack)
            .filter(|&id| id != self.node_id)
    }

    /// The lowest live node id: the "controller" clients are told of (any broker can do its work).
    pub fn controller_node(&self) -> i32 {
        self.placement_nodes()
            .into_iter()
            .min()
            .unwrap_or(self.node_id)
    }
}
