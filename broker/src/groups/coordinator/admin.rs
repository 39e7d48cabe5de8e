//! Administrative queries and deletions that do not take part in the group protocol itself: ListGroups,
//! DescribeGroups, DeleteGroups and OffsetDelete.

use bytes::Bytes;
use kafka_protocol::error::ResponseError;

use super::{code, GroupCoordinator, GroupDescription, PartitionCodes};
use crate::groups::group::GroupState;
use crate::groups::store::Change;

impl GroupCoordinator {
    /// (group id, protocol type, state) of every group, optionally only those in the given states.
    pub fn list(&self, states: &[String]) -> Vec<(String, String, &'static str)> {
        // Sessions that ended since the last timer tick end now, so an admin call sees what Kafka's
        // exact heartbeat timers would show (the tick runs every 100 ms).
        self.tick();
        let inner = self.lock();
        let mut out: Vec<(String, String, &'static str)> = inner
            .groups
            .values()
            .filter(|g| g.state != GroupState::Dead)
            .filter(|g| {
                states.is_empty()
                    || states
                        .iter()
                        .any(|s| s.eq_ignore_ascii_case(g.state.name()))
            })
            .map(|g| {
                (
                    g.id.clone(),
                    g.protocol_type.clone().unwrap_or_default(),
                    g.state.name(),
                )
            })
            .collect();
        out.sort();
        out
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        self.tick();
        let inner = self.lock();
        let g = inner.groups.get(group_id)?;
        let protocol = g.protocol.clone().unwrap_or_default();
        let stable = g.state == GroupState::Stable;
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if stable {
                protocol.clone()
            } else {
                String::new()
            },
            members: g
                .members
                .values()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        if stable {
                            m.metadata_for(&protocol)
                        } else {
                            Bytes::new()
                        },
                        if stable {
                            m.assignment.clone()
                        } else {
                            Bytes::new()
                        },
                    )
                })
                .collect(),
        })
    }

    /// DeleteGroups for one group: only groups without members can go.
    pub fn delete_group(&self, group_id: &str) -> i16 {
        self.tick();
        let mut inner = self.lock();
        let Some(g) = inner.groups.get(group_id) else {
            return code(ResponseError::GroupIdNotFound);
        };
        if !matches!(g.state, GroupState::Empty | GroupState::Dead) {
            return code(ResponseError::NonEmptyGroup);
        }
        let mut changes: Vec<Change> = g
            .offsets
            .keys()
            .map(|(t, p)| Change::Offset {
                group: group_id.to_string(),
                topic: t.clone(),
                partition: *p,
                value: None,
            })
            .collect();
        changes.push(Change::Group {
            group: group_id.to_string(),
            value: None,
        });
        if let Err(e) = inner.store.write(&changes) {
            tracing::error!(group = group_id, error = %e, "cannot persist group deletion");
            return code(ResponseError::CoordinatorNotAvailable);
        }
        inner.groups.remove(group_id);
        0
    }

    /// OffsetDelete: Err(top-level code) or a code per (topic, partition).
    pub fn delete_offsets(
        &self,
        group_id: &str,
        topics: &[(String, Vec<i32>)],
        partition_exists: impl Fn(&str, i32) -> bool,
    ) -> Result<PartitionCodes, i16> {
        let mut inner = self.lock();
        let Some(g) = inner.groups.get(group_id) else {
            return Err(code(ResponseError::GroupIdNotFound));
        };
        if g.protocol_type.as_deref().is_some_and(|t| t != "consumer") && !g.members.is_empty() {
            return Err(code(ResponseError::NonEmptyGroup));
        }
        let subscribed = if g.members.is_empty() {
            Vec::new()
        } else {
            g.subscribed_topics()
        };
        let mut changes = Vec::new();
        let result = topics
            .iter()
            .map(|(t, parts)| {
                let codes = parts
                    .iter()
                    .map(|p| {
                        if !partition_exists(t, *p) {
                            return (*p, code(ResponseError::UnknownTopicOrPartition));
                        }
                        if subscribed.contains(t) {
                            return (*p, code(ResponseError::GroupSubscribedToTopic));
                        }
                        changes.push(Change::Offset {
                            group: group_id.to_string(),
                            topic: t.clone(),
                            partition: *p,
                            value: None,
                        });
                        (*p, 0)
                    })
                    .collect();
                (t.clone(), codes)
            })
            .collect();
        if let Err(e) = inner.store.write(&changes) {
            tracing::error!(group = group_id, error = %e, "cannot persist offset deletion");
            return Err(code(ResponseError::CoordinatorNotAvailable));
        }
        if let Some(g) = inner.groups.get_mut(group_id) {
            for c in changes {
                if let Change::Offset {
                    topic, partition, ..
                } = c
                {
                    g.offsets.remove(&(topic, partition));
                }
            }
        }
        Ok(result)
    }
}
