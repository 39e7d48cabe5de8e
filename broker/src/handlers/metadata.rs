//! Metadata: the brokers, topics with their stable IDs, and each partition's leader and replicas (see
//! `Broker::partition_replicas`).
//! Asking for a missing topic creates it when the client allows it and `auto.create.topics.enable` is on.
//! Authorization as in Kafka's `handleTopicMetadataRequest`: topics without DESCRIBE are left out of
//! "all topics" answers and refused when named (by name or id); auto-creation needs CREATE on the cluster
//! or the topic; authorized-operations fields are filled in only when asked for.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use runnel_storage::TopicMeta;

use super::authz::{allowed_names, authorized_operations, is_internal_topic, OPS_NOT_REQUESTED};
use super::{str_bytes, topic_name, ErrorCode};
use crate::broker::Broker;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

pub fn topic_entry(broker: &Broker, meta: &TopicMeta, version: i16) -> MetadataResponseTopic {
    let partitions = (0..meta.partitions)
        .map(|p| {
            let placed = broker.partition_replicas(meta, p);
            let ids = |nodes: Vec<i32>| nodes.into_iter().map(BrokerId).collect();
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(placed.leader))
                .with_leader_epoch(0)
                .with_replica_nodes(ids(placed.replicas))
                .with_isr_nodes(ids(placed.isr))
                .with_offline_replicas(ids(placed.offline))
        })
        .collect();
    let mut t = MetadataResponseTopic::default()
        .with_name(Some(topic_name(&meta.name)))
        .with_is_internal(meta.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPS_NOT_REQUESTED);
    if version >= 10 {
        t.topic_id = meta.id;
    }
    t
}

fn missing(name: Option<&str>, id: uuid::Uuid, code: i16, version: i16) -> MetadataResponseTopic {
    let mut t = MetadataResponseTopic::default()
        .with_error_code(code)
        .with_name(name.map(topic_name))
        .with_topic_authorized_operations(OPS_NOT_REQUESTED);
    if version >= 10 {
        t.topic_id = id;
    }
    t
}

/// What one request needs to know while it answers topic by topic.
struct Answer<'a> {
    broker: &'a Broker,
    ctx: &'a RequestContext,
    version: i16,
    /// `include_topic_authorized_operations` on a version that carries it.
    topic_ops: bool,
    /// Whether a missing topic is created (the client allows it and so does the broker's config).
    auto_create: bool,
    /// CREATE on the cluster, asked only once a missing topic needs it, and then only once.
    cluster_create: std::sync::OnceLock<bool>,
}

impl Answer<'_> {
    /// A topic the principal may describe: its metadata (or why there is none), with its authorized
    /// operations when asked for.
    fn entry(&self, mut t: MetadataResponseTopic, name: &str) -> MetadataResponseTopic {
        if self.topic_ops {
            t.topic_authorized_operations =
                authorized_operations(self.broker, self.ctx, ResourceType::Topic, name);
        }
        t
    }

    fn refused(&self, name: Option<&str>, id: uuid::Uuid, internal: bool) -> MetadataResponseTopic {
        missing(
            name,
            id,
            ResponseError::TopicAuthorizationFailed.code(),
            self.version,
        )
        .with_is_internal(internal)
    }

    async fn by_name(&self, name: &str) -> MetadataResponseTopic {
        let (broker, ctx) = (self.broker, self.ctx);
        if !ctx.allowed(broker, Operation::Describe, ResourceType::Topic, name) {
            // The zero id: a refused name must not reveal whether the topic exists.
            return self.refused(Some(name), uuid::Uuid::nil(), false);
        }
        if self.auto_create && broker.topic_meta(name).is_none() {
            let may_create = *self
                .cluster_create
                .get_or_init(|| ctx.allowed_on_cluster(broker, Operation::Create))
                || ctx.allowed(broker, Operation::Create, ResourceType::Topic, name);
            if !may_create {
                return self.refused(Some(name), uuid::Uuid::nil(), is_internal_topic(name));
            }
        }
        let t = match broker.topic_or_auto_create(name, self.auto_create).await {
            Ok(Some(meta)) => topic_entry(broker, &meta, self.version),
            Ok(None) => missing(
                Some(name),
                uuid::Uuid::nil(),
                ResponseError::UnknownTopicOrPartition.code(),
                self.version,
            ),
            Err(e) => missing(
                Some(name),
                uuid::Uuid::nil(),
                ErrorCode::from(&e).code(),
                self.version,
            ),
        };
        self.entry(t, name)
    }

    fn by_id(&self, id: uuid::Uuid) -> MetadataResponseTopic {
        let Some(meta) = self.broker.topic_by_id(id) else {
            return missing(None, id, ResponseError::UnknownTopicId.code(), self.version);
        };
        if !self.ctx.allowed(
            self.broker,
            Operation::Describe,
            ResourceType::Topic,
            &meta.name,
        ) {
            // Kafka does not hold a topic id secret, only the name behind it.
            return self.refused(None, id, false);
        }
        self.entry(topic_entry(self.broker, &meta, self.version), &meta.name)
    }

    /// Every topic the principal may describe; the others are left out without a word.
    fn all(&self) -> Vec<MetadataResponseTopic> {
        let topics = self.broker.all_topics();
        let describable = allowed_names(
            self.broker,
            self.ctx,
            Operation::Describe,
            ResourceType::Topic,
            topics.iter().map(|m| m.name.as_str()),
        );
        topics
            .iter()
            .filter(|m| describable.contains(&m.name))
            .map(|m| self.entry(topic_entry(self.broker, m, self.version), &m.name))
            .collect()
    }
}

pub async fn handle(
    broker: &Broker,
    req: MetadataRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<MetadataResponse> {
    // Versions before 4 have no flag and always allowed auto creation.
    let allow_auto = version < 4 || req.allow_auto_topic_creation;
    let answer = Answer {
        broker,
        ctx,
        version,
        topic_ops: version >= 8 && req.include_topic_authorized_operations,
        auto_create: allow_auto && broker.config.auto_create_topics(),
        cluster_create: std::sync::OnceLock::new(),
    };
    let topics = match req.topics {
        // v0 sends an empty list for "all topics"; later versions send null.
        None => answer.all(),
        Some(list) if list.is_empty() && version == 0 => answer.all(),
        Some(list) => {
            let mut topics = Vec::with_capacity(list.len());
            for t in list {
                topics.push(match t.name {
                    Some(name) => answer.by_name(&name).await,
                    None => answer.by_id(t.topic_id),
                });
            }
            topics
        }
    };
    let brokers = broker
        .brokers_for(&ctx.listener)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(&b.host))
                .with_port(b.port)
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(BrokerId(broker.controller_node()))
        .with_topics(topics);
    if version >= 2 {
        resp.cluster_id = Some(str_bytes(&broker.cluster_id));
    }
    if (8..=10).contains(&version) {
        resp.cluster_authorized_operations = if !req.include_cluster_authorized_operations {
            OPS_NOT_REQUESTED
        } else if ctx.allowed_on_cluster(broker, Operation::Describe) {
            authorized_operations(
                broker,
                ctx,
                ResourceType::Cluster,
                crate::request::CLUSTER_RESOURCE,
            )
        } else {
            0
        };
    }
    Some(resp)
}
