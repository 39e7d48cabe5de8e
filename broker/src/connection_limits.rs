//! How many connections the broker takes, in all and from one address (Kafka's `max.connections`,
//! `max.connections.per.ip` and `max.connections.per.ip.overrides`).
//!
//! The per-address cap sits below the global one by default, so one peer opening connections in a loop
//! is refused long before everyone else is: each refused connection is closed at once with a log line.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The configured caps.
#[derive(Debug, Clone)]
pub struct Limits {
    total: usize,
    per_ip: usize,
    overrides: HashMap<IpAddr, usize>,
}

impl Limits {
    /// `overrides` is Kafka's `host:count,host:count` (IP addresses; `*` is not special).
    pub fn parse(total: usize, per_ip: usize, overrides: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for entry in overrides
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (host, count) = entry
                .rsplit_once(':')
                .ok_or_else(|| format!("'{entry}' is not host:count"))?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = host
                .parse()
                .map_err(|_| format!("'{host}' in '{entry}' is not an IP address"))?;
            let count: usize = count
                .parse()
                .map_err(|_| format!("'{count}' in '{entry}' is not a count"))?;
            map.insert(ip, count);
        }
        Ok(Limits {
            total,
            per_ip,
            overrides: map,
        })
    }

    fn for_ip(&self, ip: IpAddr) -> usize {
        self.overrides.get(&ip).copied().unwrap_or(self.per_ip)
    }
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "address already has the configured maximum of {0} connections (max.connections.per.ip)"
    )]
    PerIp(usize),
    #[error("the broker has the configured maximum of {0} connections (max.connections)")]
    Total(usize),
}

#[derive(Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Live connection counts; [`ConnectionCounter::admit`] hands out a guard that gives the slot back.
#[derive(Clone)]
pub struct ConnectionCounter {
    /// Replaced whole when the limits change (dynamic configs); connections already admitted stay.
    limits: Arc<std::sync::RwLock<Arc<Limits>>>,
    counts: Arc<Mutex<Counts>>,
}

/// One admitted connection; dropping it frees its slot.
pub struct Admitted {
    ip: IpAddr,
    counts: Arc<Mutex<Counts>>,
}

impl ConnectionCounter {
    pub fn new(limits: Limits) -> Self {
        ConnectionCounter {
            limits: Arc::new(std::sync::RwLock::new(Arc::new(limits))),
            counts: Arc::default(),
        }
    }

    pub fn set_limits(&self, limits: Limits) {
        *self.limits.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(limits);
    }

    /// Takes a slot for a connection from `ip`, or says which limit refuses it.
    pub fn admit(&self, ip: IpAddr) -> Result<Admitted, Refusal> {
        let limits = Arc::clone(&self.limits.read().unwrap_or_else(|p| p.into_inner()));
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let ip_limit = limits.for_ip(ip);
        let from_ip = counts.by_ip.get(&ip).copied().unwrap_or(0);
        if from_ip >= ip_limit {
            return Err(Refusal::PerIp(ip_limit));
        }
        if counts.total >= limits.total {
            return Err(Refusal::Total(limits.total));
        }
        counts.total += 1;
        *counts.by_ip.entry(ip).or_default() += 1;
        Ok(Admitted {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn one_address_cannot_take_every_slot() {
        let c = ConnectionCounter::new(Limits::parse(5, 3, "127.0.0.9:0").expect("limits"));
        let held: Vec<_> = (0..3)
            .filter_map(|_| c.admit(ip("127.0.0.1")).ok())
            .collect();
        assert_eq!(held.len(), 3);
        assert_eq!(c.admit(ip("127.0.0.1")).err(), Some(Refusal::PerIp(3)));
        assert!(
            c.admit(ip("127.0.0.2")).is_ok(),
            "another address still gets in"
        );
        assert_eq!(c.admit(ip("127.0.0.9")).err(), Some(Refusal::PerIp(0)));
        let more: Vec<_> = (0..2)
            .filter_map(|_| c.admit(ip("127.0.0.3")).ok())
            .collect();
        assert_eq!(more.len(), 2);
        assert_eq!(c.admit(ip("127.0.0.4")).err(), Some(Refusal::Total(5)));
        drop(held);
        assert!(
            c.admit(ip("127.0.0.1")).is_ok(),
            "closed connections free their slots"
        );
    }

    #[test]
    fn overrides_are_parsed_as_kafka_writes_them() {
        let l = Limits::parse(10, 2, " 127.0.0.1:7, [::1]:4 ").expect("limits");
        assert_eq!(l.for_ip(ip("127.0.0.1")), 7);
        assert_eq!(l.for_ip(ip("::1")), 4);
        assert_eq!(l.for_ip(ip("10.0.0.1")), 2);
        assert!(Limits::parse(10, 2, "nohost").is_err());
        assert!(Limits::parse(10, 2, "example:x").is_err());
    }
}
