//! Who answers for what among the live brokers: rendezvous (highest random weight) hashing of a key over
//! the brokers, so a partition's "leader" or a group's coordinator moves only when its own broker comes
//! or goes, and every broker computes the same answer from the same live list without talking. And the
//! advertised address of each live broker for the listener a client came in on.

use super::registry::LiveBroker;

/// A live broker's address on one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// Each live broker's address on `listener` (by name; a broker without it is left out), or on its first
/// listener when `listener` is None.
pub fn addresses(live: &[LiveBroker], listener: Option<&str>) -> Vec<BrokerAddr> {
    live.iter()
        .filter_map(|b| {
            let (host, port) = match listener {
                Some(name) => listener_address(&b.listeners, name)?,
                None => first_listener_address(&b.listeners)?,
            };
            Some(BrokerAddr {
                node_id: b.node_id,
                host,
                port,
                rack: b.rack.clone(),
            })
        })
        .collect()
}

/// HOST and PORT of `name` in `NAME://HOST:PORT,...` (IPv6 hosts in brackets).
fn listener_address(listeners: &str, name: &str) -> Option<(String, i32)> {
    listeners.split(',').find_map(|l| {
        let (n, rest) = l.trim().split_once("://")?;
        if !n.eq_ignore_ascii_case(name) {
            return None;
        }
        host_port(rest)
    })
}

fn first_listener_address(listeners: &str) -> Option<(String, i32)> {
    let (_, rest) = listeners.split(',').next()?.trim().split_once("://")?;
    host_port(rest)
}

fn host_port(address: &str) -> Option<(String, i32)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_string(), port.parse().ok()?))
}

/// FNV-1a: stable across builds and platforms (std's hasher is not promised to be), so brokers of
/// different versions agree during an upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// splitmix64's finaliser: spreads the combined key and node well enough for rendezvous scores.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn score(key_hash: u64, node: i32) -> (u64, i32) {
    (mix(key_hash ^ mix(node as u32 as u64)), node)
}

/// The broker of `candidates` that owns `key`; None when there are none.
pub fn owner(key: &[u8], candidates: impl IntoIterator<Item = i32>) -> Option<i32> {
    let k = fnv1a(key);
    candidates.into_iter().max_by_key(|&node| score(k, node))
}

/// `candidates` from the owner of `key` down: the first `n` are where `key` would go with `n` replicas,
/// and each keeps its place when another broker comes or goes.
pub fn ranked(key: &[u8], candidates: impl IntoIterator<Item = i32>) -> Vec<i32> {
    let k = fnv1a(key);
    let mut nodes: Vec<i32> = candidates.into_iter().collect();
    nodes.sort_by_key(|&node| std::cmp::Reverse(score(k, node)));
    nodes
}

/// The key a partition is placed by.
pub fn partition_key(topic_id: uuid::Uuid, partition: i32) -> Vec<u8> {
    let mut key = topic_id.as_bytes().to_vec();
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(ids: &[i32]) -> Vec<LiveBroker> {
        ids.iter()
            .map(|&id| LiveBroker {
                node_id: id,
                listeners: format!(
                    "PLAINTEXT://127.0.0.1:{},SSL://[::1]:{}",
                    9000 + id,
                    9100 + id
                ),
                rack: None,
            })
            .collect()
    }

    #[test]
    fn addresses_follow_the_listener_name() {
        let a = addresses(&live(&[1, 2]), Some("ssl"));
        assert_eq!(a[0].host, "::1");
        assert_eq!(a[1].port, 9102);
        assert!(addresses(&live(&[1]), Some("SASL_SSL")).is_empty());
        assert_eq!(
            addresses(&live(&[1]), None)[0].port,
            9001,
            "the first listener"
        );
    }

    #[test]
    fn owners_move_only_with_their_broker() {
        let keys: Vec<Vec<u8>> = (0..1000)
            .map(|p| partition_key(uuid::Uuid::nil(), p))
            .collect();
        let before: Vec<i32> = keys
            .iter()
            .map(|k| owner(k, [1, 2, 3]).unwrap_or(-1))
            .collect();
        let after: Vec<i32> = keys
            .iter()
            .map(|k| owner(k, [1, 3]).unwrap_or(-1))
            .collect();
        for (b, a) in before.iter().zip(&after) {
            if *b != 2 {
                assert_eq!(a, b, "a key not on the removed broker kept its owner");
            }
        }
        for k in &keys {
            assert_eq!(ranked(k, [1, 2, 3]).first().copied(), owner(k, [1, 2, 3]));
        }
        // Spread: each of three brokers owns a fair share of 1000 keys.
        for node in [1, 2, 3] {
            let n = before.iter().filter(|&&o| o == node).count();
            assert!((200..=470).contains(&n), "broker {node} owns {n} of 1000");
        }
    }
}
