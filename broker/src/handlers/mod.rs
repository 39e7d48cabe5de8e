//! One module per Kafka API: decode → act → encode, in the shape of mini-redis's commands.
//! Kafka error codes are data on the wire: [`error_code`] maps storage errors to what Kafka would send.

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod authz;
pub mod client_quotas;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_producers;
pub mod describe_transactions;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod produce_legacy;
pub mod replica_assignment;
pub mod scram_credentials;
pub mod sync_group;
pub mod txn_offset_commit;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

pub fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

/// The code for a stale producer epoch on transactional APIs: PRODUCER_FENCED, except for versions older
/// than 2, which predate it and get INVALID_PRODUCER_EPOCH (as Kafka converts it).
pub fn fenced_code(version: i16) -> i16 {
    if version < 2 {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        ResponseError::ProducerFenced.code()
    }
}

pub fn opt_str(s: &Option<String>) -> Option<StrBytes> {
    s.as_deref().map(str_bytes)
}

pub use crate::error_code::ErrorCode;

/// The partition, or UNKNOWN_TOPIC_OR_PARTITION: the answer every partition-level handler gives for a
/// partition this broker does not host.
pub fn partition_or_unknown(
    broker: &crate::broker::Broker,
    topic: &str,
    index: i32,
) -> Result<std::sync::Arc<crate::broker::Partition>, ErrorCode> {
    broker
        .partition(topic, index)
        .ok_or_else(|| ErrorCode::from(ResponseError::UnknownTopicOrPartition))
}

/// The topics of an OffsetCommit or TxnOffsetCommit request as commit entries (both messages name their
/// fields alike, but are different types).
macro_rules! commit_topics {
    ($topics:expr) => {
        $topics
            .iter()
            .map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    .map(|p| $crate::groups::CommitEntry {
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                    })
                    .collect();
                (t.name.to_string(), parts)
            })
            .collect()
    };
}
pub(crate) use commit_topics;

/// The same code for every partition of an offset commit (a refusal of the whole request).
pub(crate) fn every_partition(
    topics: &[(String, Vec<crate::groups::CommitEntry>)],
    code: i16,
) -> crate::groups::PartitionCodes {
    topics
        .iter()
        .map(|(t, parts)| {
            (
                t.clone(),
                parts.iter().map(|e| (e.partition, code)).collect(),
            )
        })
        .collect()
}

/// The codes of an offset commit, each replaced by `code` (the commit did not reach the database).
pub(crate) fn overridden(
    codes: crate::groups::PartitionCodes,
    code: i16,
) -> crate::groups::PartitionCodes {
    codes
        .into_iter()
        .map(|(t, parts)| (t, parts.into_iter().map(|(p, _)| (p, code)).collect()))
        .collect()
}
