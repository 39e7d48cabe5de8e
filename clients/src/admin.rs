//! The admin client: topics, configs, partitions, consumer groups and their offsets, records, the cluster.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest, DeleteRecordsRequest,
    DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest, GroupId,
    IncrementalAlterConfigsRequest, ListGroupsRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{Cluster, CoordinatorType};
use crate::consumer::{GroupMetadata, IsolationLevel};
use crate::error::{check, ClientError, Result};
use crate::group::decode_assignment;
use crate::TopicPartition;

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1: the broker's num.partitions.
    pub partitions: i32,
    /// -1: the broker's default.replication.factor.
    pub replication: i16,
    pub configs: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct TopicDescription {
    pub name: String,
    pub id: uuid::Uuid,
    pub internal: bool,
    /// (partition, leader node)
    pub partitions: Vec<(i32, i32)>,
}

#[derive(Debug, Clone)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    /// DescribeConfigs source: 1 topic override, 4 static broker config, 5 default, ...
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
}

#[derive(Debug, Clone)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    pub assignment: Vec<TopicPartition>,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
}

pub struct Admin {
    cluster: Arc<Cluster>,
}

impl Admin {
    pub fn new(cluster: Arc<Cluster>) -> Self {
        Admin { cluster }
    }

    pub fn cluster(&self) -> &Arc<Cluster> {
        &self.cluster
    }

    pub async fn create_topics(&self, topics: &[NewTopic], validate_only: bool) -> Result<()> {
        let req = CreateTopicsRequest::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(sb(&t.name)))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(sb(k))
                                            .with_value(Some(sb(v)))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            )
            .with_timeout_ms(self.cluster.config.request_timeout.as_millis() as i32)
            .with_validate_only(validate_only);
        let conn = self
            .cluster
            .broker(self.cluster.controller())
            .await
            .or(self.cluster.any().await)?;
        let resp = conn.call(&req).await?;
        for t in &resp.topics {
            if t.error_code != 0 {
                let msg = t
                    .error_message
                    .as_ref()
                    .map_or(String::new(), |m| format!(" ({})", m.as_str()));
                return Err(ClientError::kafka(
                    format!("create topic {}{msg}", t.name.as_str()),
                    t.error_code,
                ));
            }
        }
        for t in topics {
            self.cluster.invalidate(&t.name);
        }
        Ok(())
    }

    pub async fn delete_topics(&self, names: &[String]) -> Result<()> {
        let conn = self.cluster.any().await?;
        let mut req = DeleteTopicsRequest::default()
            .with_timeout_ms(self.cluster.config.request_timeout.as_millis() as i32);
        req.topic_names = names.iter().map(|n| TopicName(sb(n))).collect();
        let resp = conn.call(&req).await?;
        for r in &resp.responses {
            let name = r.name.as_ref().map_or(String::new(), |n| n.to_string());
            check(|| format!("delete topic {name}"), r.error_code)?;
            self.cluster.invalidate(&name);
        }
        Ok(())
    }

    /// Names of every topic that is not internal, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .cluster
            .topics()
            .await?
            .into_iter()
            .filter(|(_, t)| !t.internal)
            .map(|(n, _)| n)
            .collect();
        names.sort();
        Ok(names)
    }

    pub async fn describe_topics(&self, names: &[String]) -> Result<Vec<TopicDescription>> {
        self.cluster.refresh(names).await?;
        let mut out = Vec::new();
        for n in names {
            let t = self.cluster.topic(n).await?;
            out.push(TopicDescription {
                name: n.clone(),
                id: t.id,
                internal: t.internal,
                partitions: t
                    .partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (i as i32, p.leader))
                    .collect(),
            });
        }
        Ok(out)
    }

    pub async fn create_partitions(&self, topic: &str, total: i32) -> Result<()> {
        let req = CreatePartitionsRequest::default()
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_count(total)
                .with_assignments(None)])
            .with_timeout_ms(self.cluster.config.request_timeout.as_millis() as i32);
        let resp = self.cluster.any().await?.call(&req).await?;
        for r in &resp.results {
            let msg = r
                .error_message
                .as_ref()
                .map_or(String::new(), |m| format!(" ({})", m.as_str()));
            check(
                || format!("create partitions for {topic}{msg}"),
                r.error_code,
            )?;
        }
        self.cluster.invalidate(topic);
        Ok(())
    }

    pub async fn describe_topic_configs(&self, topic: &str) -> Result<Vec<ConfigEntry>> {
        let req = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(sb(topic))
                .with_configuration_keys(None),
        ]);
        let resp = self.cluster.any().await?.call(&req).await?;
        let r = resp
            .results
            .first()
            .ok_or_else(|| ClientError::Protocol("empty DescribeConfigs answer".into()))?;
        check(|| format!("describe configs of {topic}"), r.error_code)?;
        Ok(r.configs
            .iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.as_ref().map(|v| v.to_string()),
                source: c.config_source,
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            })
            .collect())
    }

    /// Sets and removes topic config overrides (IncrementalAlterConfigs SET and DELETE).
    pub async fn alter_topic_configs(
        &self,
        topic: &str,
        set: &[(String, String)],
        delete: &[String],
    ) -> Result<()> {
        let mut configs: Vec<AlterableConfig> = set
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(sb(k))
                    .with_config_operation(0)
                    .with_value(Some(sb(v)))
            })
            .collect();
        configs.extend(delete.iter().map(|k| {
            AlterableConfig::default()
                .with_name(sb(k))
                .with_config_operation(1)
                .with_value(None)
        }));
        let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(sb(topic))
                .with_configs(configs),
        ]);
        let resp = self.cluster.any().await?.call(&req).await?;
        for r in &resp.responses {
            let msg = r
                .error_message
                .as_ref()
                .map_or(String::new(), |m| format!(" ({})", m.as_str()));
            check(|| format!("alter configs of {topic}{msg}"), r.error_code)?;
        }
        Ok(())
    }

    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let mut out = Vec::new();
        for (node, _) in self.cluster.brokers() {
            let resp = self
                .cluster
                .broker(node)
                .await?
                .call(&ListGroupsRequest::default())
                .await?;
            check(|| "ListGroups".into(), resp.error_code)?;
            out.extend(resp.groups.iter().map(|g| GroupListing {
                group_id: g.group_id.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let conn = self
            .cluster
            .coordinator(group, CoordinatorType::Group)
            .await?;
        let resp = conn
            .call(&DescribeGroupsRequest::default().with_groups(vec![GroupId(sb(group))]))
            .await?;
        let g = resp
            .groups
            .first()
            .ok_or_else(|| ClientError::Protocol("empty DescribeGroups answer".into()))?;
        check(|| format!("describe group {group}"), g.error_code)?;
        Ok(GroupDescription {
            group_id: group.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    host: m.client_host.to_string(),
                    assignment: if g.protocol_type.as_str() == "consumer" {
                        decode_assignment(m.member_assignment.clone())
                    } else {
                        Vec::new()
                    },
                })
                .collect(),
        })
    }

    pub async fn delete_groups(&self, groups: &[String]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::new();
        for g in groups {
            let conn = self.cluster.coordinator(g, CoordinatorType::Group).await?;
            let resp = conn
                .call(&DeleteGroupsRequest::default().with_groups_names(vec![GroupId(sb(g))]))
                .await?;
            let code = resp.results.first().map_or(0, |r| r.error_code);
            out.push((g.clone(), check(|| format!("delete group {g}"), code)));
        }
        Ok(out)
    }

    /// Every committed offset of a group.
    pub async fn list_group_offsets(&self, group: &str) -> Result<HashMap<TopicPartition, i64>> {
        let conn = self
            .cluster
            .coordinator(group, CoordinatorType::Group)
            .await?;
        let resp = conn
            .call(
                &OffsetFetchRequest::default()
                    .with_group_id(GroupId(sb(group)))
                    .with_topics(None),
            )
            .await?;
        check(|| format!("fetch offsets of {group}"), resp.error_code)?;
        Ok(resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.committed_offset >= 0)
                    .map(move |p| ((t.name.to_string(), p.partition_index), p.committed_offset))
            })
            .collect())
    }

    /// Sets a group's committed offsets (the group must have no active members), as reset-offsets does.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[(String, i32, i64)],
    ) -> Result<()> {
        let meta = GroupMetadata {
            group_id: group.to_string(),
            generation: -1,
            member_id: String::new(),
            instance_id: None,
        };
        crate::consumer::send_commit(&self.cluster, &meta, offsets).await
    }

    /// Offsets at a timestamp (-1 latest, -2 earliest) for partitions.
    pub async fn list_offsets(
        &self,
        parts: &[TopicPartition],
        timestamp: i64,
    ) -> Result<HashMap<TopicPartition, (i64, i64)>> {
        crate::consumer::list_offsets(
            &self.cluster,
            parts,
            timestamp,
            IsolationLevel::ReadUncommitted,
        )
        .await
    }

    /// Deletes records below `offset` (-1: everything); returns the new low watermark.
    pub async fn delete_records(&self, topic: &str, partition: i32, offset: i64) -> Result<i64> {
        let conn = self.cluster.leader(topic, partition).await?;
        let req = DeleteRecordsRequest::default()
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(offset)])])
            .with_timeout_ms(self.cluster.config.request_timeout.as_millis() as i32);
        let resp = conn.call(&req).await?;
        let p = resp
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| ClientError::Protocol("empty DeleteRecords answer".into()))?;
        check(
            || format!("delete records of {topic}-{partition}"),
            p.error_code,
        )?;
        Ok(p.low_watermark)
    }

    /// (cluster id, controller, brokers as (node, HOST:PORT)).
    pub async fn describe_cluster(&self) -> Result<(Option<String>, i32, Vec<(i32, String)>)> {
        self.cluster.refresh(&[]).await?;
        Ok((
            self.cluster.cluster_id(),
            self.cluster.controller(),
            self.cluster.brokers(),
        ))
    }
}
