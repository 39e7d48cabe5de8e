//! OffsetFetch: committed offsets with their metadata as committed, for one group (v0-7) or several (v8+).
//! A partition without a commit answers offset -1. Authorization as in Kafka's
//! `handleOffsetFetchRequestFromCoordinator`: DESCRIBE on the group, else a group-level
//! GROUP_AUTHORIZATION_FAILED; DESCRIBE on each topic, else its requested partitions answer
//! TOPIC_AUTHORIZATION_FAILED and, when every partition is asked for, the topic is left out.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse};

use super::authz::allowed_names;
use super::{str_bytes, topic_name, ErrorCode};
use crate::broker::Broker;
use crate::groups::group::CommittedOffset;
use crate::groups::FetchedOffsets as Found;
use crate::request::RequestContext;
use crate::security::acl::{Operation, ResourceType};

/// One partition's answer.
struct Fields {
    partition: i32,
    offset: i64,
    epoch: i32,
    metadata: String,
    code: i16,
}

/// One group's answer: its partitions by topic, or the group-level error.
type GroupAnswer = Result<Vec<(String, Vec<Fields>)>, i16>;

/// With `require_stable`, a partition whose offset an open transaction is about to change answers
/// UNSTABLE_OFFSET_COMMIT, so the consumer retries.
fn fields(
    broker: &Broker,
    group: &str,
    topic: &str,
    partition: i32,
    o: &Option<CommittedOffset>,
    require_stable: bool,
) -> Fields {
    let (offset, epoch, metadata, code) =
        if require_stable && broker.groups.has_pending(group, topic, partition) {
            (
                -1,
                -1,
                String::new(),
                ResponseError::UnstableOffsetCommit.code(),
            )
        } else {
            match o {
                Some(o) => (
                    o.offset,
                    o.leader_epoch,
                    o.metadata.clone().unwrap_or_default(),
                    ErrorCode::NONE.code(),
                ),
                None => (-1, -1, String::new(), ErrorCode::NONE.code()),
            }
        };
    Fields {
        partition,
        offset,
        epoch,
        metadata,
        code,
    }
}

async fn group_answer(
    broker: &Broker,
    ctx: &RequestContext,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> GroupAnswer {
    if !ctx.allowed(broker, Operation::Describe, ResourceType::Group, group) {
        return Err(ResponseError::GroupAuthorizationFailed.code());
    }
    // In a cluster, offsets are read from memory only while this broker's claim is still the current one.
    if !broker.hold(&broker.groups, group).await? {
        broker.confirm_held(&broker.groups, group).await?;
    }
    let describable = |names: Vec<&str>| {
        allowed_names(broker, ctx, Operation::Describe, ResourceType::Topic, names)
    };
    let (found, refused): (Found, Vec<(String, Vec<i32>)>) = match topics {
        None => {
            let all = broker.groups.fetch_offsets(group, None);
            let allowed = describable(all.iter().map(|(t, _)| t.as_str()).collect());
            let shown = all.into_iter().filter(|(t, _)| allowed.contains(t));
            (shown.collect(), Vec::new())
        }
        Some(list) => {
            let allowed = describable(list.iter().map(|(t, _)| t.as_str()).collect());
            let (asked, refused) = list.into_iter().partition(|(t, _)| allowed.contains(t));
            (broker.groups.fetch_offsets(group, Some(asked)), refused)
        }
    };
    let mut answer: Vec<(String, Vec<Fields>)> = found
        .into_iter()
        .map(|(t, parts)| {
            let fs = parts
                .iter()
                .map(|(p, o)| fields(broker, group, &t, *p, o, require_stable))
                .collect();
            (t, fs)
        })
        .collect();
    let code = ResponseError::TopicAuthorizationFailed.code();
    answer.extend(refused.into_iter().map(|(t, parts)| {
        let fs = parts
            .into_iter()
            .map(|partition| Fields {
                partition,
                offset: -1,
                epoch: -1,
                metadata: String::new(),
                code,
            })
            .collect();
        (t, fs)
    }));
    Ok(answer)
}

pub async fn handle(
    broker: &Broker,
    req: OffsetFetchRequest,
    version: i16,
    ctx: &RequestContext,
) -> Option<OffsetFetchResponse> {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let topics = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let group =
                OffsetFetchResponseGroup::default().with_group_id(GroupId(g.group_id.0.clone()));
            groups.push(
                match group_answer(broker, ctx, &g.group_id, topics, req.require_stable).await {
                    Err(code) => group.with_error_code(code),
                    Ok(answer) => group
                        .with_error_code(ErrorCode::NONE.code())
                        .with_topics(answer.into_iter().map(topic_v8).collect()),
                },
            );
        }
        return Some(OffsetFetchResponse::default().with_groups(groups));
    }
    let topics = req.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let stable = version >= 7 && req.require_stable;
    // A refused group answers with no topics: before v2 there is no field for its code either, so the
    // answer is empty, as Kafka's conversion of a group error to these versions leaves it.
    let (code, answer) = match group_answer(broker, ctx, &req.group_id, topics, stable).await {
        Err(code) => (code, Vec::new()),
        Ok(answer) => (ErrorCode::NONE.code(), answer),
    };
    let topics = answer
        .into_iter()
        .map(|(t, parts)| {
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&t))
                .with_partitions(
                    parts
                        .into_iter()
                        .map(|f| {
                            let mut r = OffsetFetchResponsePartition::default()
                                .with_partition_index(f.partition)
                                .with_committed_offset(f.offset)
                                .with_metadata(Some(str_bytes(&f.metadata)))
                                .with_error_code(f.code);
                            if version >= 5 {
                                r.committed_leader_epoch = f.epoch;
                            }
                            r
                        })
                        .collect(),
                )
        })
        .collect();
    Some(
        OffsetFetchResponse::default()
            .with_topics(topics)
            .with_error_code(code),
    )
}

fn topic_v8((t, parts): (String, Vec<Fields>)) -> OffsetFetchResponseTopics {
    OffsetFetchResponseTopics::default()
        .with_name(topic_name(&t))
        .with_partitions(
            parts
                .into_iter()
                .map(|f| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(f.partition)
                        .with_committed_offset(f.offset)
                        .with_committed_leader_epoch(f.epoch)
                        .with_metadata(Some(str_bytes(&f.metadata)))
                        .with_error_code(f.code)
                })
                .collect(),
        )
}
