//! Manual replica assignments in CreateTopics and CreatePartitions, checked as Kafka's controller checks
//! them (`ReplicationControlManager.validateManualPartitionAssignment`): every list non-empty, each broker
//! registered and named once, and all lists the same length (that of the topic's existing partitions when
//! growing it). Any failure is INVALID_REPLICA_ASSIGNMENT with Kafka's wording.

use std::collections::BTreeMap;

use kafka_protocol::messages::BrokerId;

use crate::cluster::placement::BrokerAddr;

/// The lists by partition (from `first_partition` on, in request order), or why they are refused.
pub fn checked(
    lists: impl IntoIterator<Item = impl AsRef<[BrokerId]>>,
    first_partition: i32,
    existing_factor: Option<usize>,
    brokers: &[BrokerAddr],
) -> Result<BTreeMap<i32, Vec<i32>>, String> {
    let mut by_partition = BTreeMap::new();
    let mut factor = existing_factor;
    for (partition, list) in (first_partition..).zip(lists) {
        let nodes: Vec<i32> = list.as_ref().iter().map(|b| b.0).collect();
        if nodes.is_empty() {
            return Err("The manual partition assignment includes an empty replica list.".into());
        }
        for (i, node) in nodes.iter().enumerate() {
            if !brokers.iter().any(|b| b.node_id == *node) {
                return Err(format!(
                    "The manual partition assignment includes broker {node}, but no such broker is registered."
                ));
            }
            if nodes[..i].contains(node) {
                return Err(format!(
                    "The manual partition assignment includes the broker {node} more than once."
                ));
            }
        }
        match factor {
            Some(f) if f != nodes.len() => {
                return Err(format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {f} replica(s).",
                    nodes.len()
                ))
            }
            _ => factor = Some(nodes.len()),
        }
        by_partition.insert(partition, nodes);
    }
    Ok(by_partition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(ids: &[i32]) -> Vec<BrokerAddr> {
        ids.iter()
            .map(|&node_id| BrokerAddr {
                node_id,
                host: "localhost".into(),
                port: 9092,
                rack: None,
            })
            .collect()
    }

    fn ids(nodes: &[i32]) -> Vec<BrokerId> {
        nodes.iter().copied().map(BrokerId).collect()
    }

    #[test]
    fn lists_are_kept_by_partition_in_the_order_named() {
        let got = checked([ids(&[3, 1]), ids(&[1, 2])], 4, None, &brokers(&[1, 2, 3]));
        assert_eq!(got, Ok(BTreeMap::from([(4, vec![3, 1]), (5, vec![1, 2])])));
    }

    #[test]
    fn unknown_repeated_empty_and_uneven_lists_are_refused() {
        let known = brokers(&[1, 2]);
        for (lists, existing, says) in [
            (vec![ids(&[1, 7])], None, "broker 7, but no such broker"),
            (vec![ids(&[2, 2])], None, "the broker 2 more than once"),
            (vec![ids(&[])], None, "empty replica list"),
            (vec![ids(&[1]), ids(&[1, 2])], None, "with 2 replica(s)"),
            (vec![ids(&[1, 2])], Some(1), "which have 1 replica(s)"),
        ] {
            let err = checked(lists, 0, existing, &known).expect_err("refused");
            assert!(err.contains(says), "{err}");
        }
    }
}
