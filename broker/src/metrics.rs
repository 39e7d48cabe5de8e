//! The broker's metrics in Prometheus' text format: requests, bytes and time per API (counted by the
//! dispatcher), connections, and every partition's offsets and size (read when scraped, so they cost nothing
//! between scrapes).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

use crate::broker::Broker;

/// Api keys are below this (Kafka's reach the 90s).
const API_SLOTS: usize = 128;

pub struct BrokerMetrics {
    requests: [AtomicU64; API_SLOTS],
    request_bytes: [AtomicU64; API_SLOTS],
    response_bytes: [AtomicU64; API_SLOTS],
    request_micros: [AtomicU64; API_SLOTS],
    connections: AtomicI64,
    connections_total: AtomicU64,
    /// (listener, mechanism, succeeded) → count. Few distinct keys, touched once per login.
    authentications: Mutex<BTreeMap<(String, String, bool), u64>>,
    /// (user, client id) quota entity → throttle time handed out, in ms.
    throttle_ms: Mutex<BTreeMap<(String, String), u64>>,
}

impl Default for BrokerMetrics {
    fn default() -> Self {
        BrokerMetrics {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            request_bytes: std::array::from_fn(|_| AtomicU64::new(0)),
            response_bytes: std::array::from_fn(|_| AtomicU64::new(0)),
            request_micros: std::array::from_fn(|_| AtomicU64::new(0)),
            connections: AtomicI64::new(0),
            connections_total: AtomicU64::new(0),
            authentications: Mutex::new(BTreeMap::new()),
            throttle_ms: Mutex::new(BTreeMap::new()),
        }
    }
}

impl BrokerMetrics {
    pub fn request(&self, api: i16, request_bytes: usize, response_bytes: usize, took: Duration) {
        let Some(i) = usize::try_from(api).ok().filter(|i| *i < API_SLOTS) else {
            return;
        };
        self.requests[i].fetch_add(1, Ordering::Relaxed);
        self.request_bytes[i].fetch_add(request_bytes as u64, Ordering::Relaxed);
        self.response_bytes[i].fetch_add(response_bytes as u64, Ordering::Relaxed);
        self.request_micros[i].fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    pub fn authentication(&self, listener: &str, mechanism: &str, succeeded: bool) {
        let mut map = self
            .authentications
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *map.entry((listener.to_string(), mechanism.to_string(), succeeded))
            .or_default() += 1;
    }

    pub fn throttled(&self, user: &str, client_id: &str, ms: u64) {
        let mut map = self.throttle_ms.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry((user.to_string(), client_id.to_string()))
            .or_default() += ms;
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn render(&self, broker: &Broker) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in rows {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let per_api = |values: &[AtomicU64; API_SLOTS], scale: f64| -> Vec<(String, String)> {
            (0..API_SLOTS)
                .filter(|i| self.requests[*i].load(Ordering::Relaxed) > 0)
                .map(|i| {
                    let api = ApiKey::try_from(i as i16)
                        .map_or_else(|_| format!("{i}"), |k| format!("{k:?}"));
                    let v = values[i].load(Ordering::Relaxed) as f64 / scale;
                    (format!("{{api=\"{api}\"}}"), format!("{v}"))
                })
                .collect()
        };
        family(
            "runnel_requests_total",
            "counter",
            "Requests handled, per API.",
            per_api(&self.requests, 1.0),
        );
        family(
            "runnel_request_bytes_total",
            "counter",
            "Request bytes received, per API.",
            per_api(&self.request_bytes, 1.0),
        );
        family(
            "runnel_response_bytes_total",
            "counter",
            "Response bytes sent, per API.",
            per_api(&self.response_bytes, 1.0),
        );
        family(
            "runnel_request_seconds_total",
            "counter",
            "Time spent handling requests, per API.",
            per_api(&self.request_micros, 1e6),
        );
        let single = |v: String| vec![(String::new(), v)];
        family(
            "runnel_connections",
            "gauge",
            "Open client connections.",
            single(self.connections.load(Ordering::Relaxed).to_string()),
        );
        family(
            "runnel_connections_total",
            "counter",
            "Client connections accepted.",
            single(self.connections_total.load(Ordering::Relaxed).to_string()),
        );
        let (mut ok, mut failed) = (Vec::new(), Vec::new());
        for ((listener, mechanism, succeeded), n) in self
            .authentications
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let labels = format!(
                "{{listener=\"{}\",mechanism=\"{}\"}}",
                label(listener),
                label(mechanism)
            );
            if *succeeded { &mut ok } else { &mut failed }.push((labels, n.to_string()));
        }
        family(
            "runnel_authentication_success_total",
            "counter",
            "Successful authentications, per listener and mechanism.",
            ok,
        );
        family(
            "runnel_authentication_failure_total",
            "counter",
            "Failed authentications (bad credentials, TLS handshake failures), per listener and mechanism.",
            failed,
        );
        let throttles = self
            .throttle_ms
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|((user, client), ms)| {
                (
                    format!(
                        "{{user=\"{}\",client_id=\"{}\"}}",
                        label(user),
                        label(client)
                    ),
                    format!("{}", *ms as f64 / 1000.0),
                )
            })
            .collect();
        family(
            "runnel_quota_throttle_seconds_total",
            "counter",
            "Throttle time handed to clients by quotas, per user and client id.",
            throttles,
        );
        let mut end = Vec::new();
        let mut start = Vec::new();
        let mut size = Vec::new();
        let mut parts = broker.every_partition();
        parts.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
        for p in parts {
            let Some(log) = p.local_log() else {
                continue; // shared partitions: their bounds are the database's, shown by `runnel cluster status`
            };
            let labels = format!("{{topic=\"{}\",partition=\"{}\"}}", p.topic, p.index);
            end.push((labels.clone(), log.high_watermark().to_string()));
            start.push((labels.clone(), log.log_start_offset().to_string()));
            size.push((labels, log.size_bytes().to_string()));
        }
        family(
            "runnel_log_end_offset",
            "gauge",
            "High watermark per partition.",
            end,
        );
        family(
            "runnel_log_start_offset",
            "gauge",
            "Log start offset per partition.",
            start,
        );
        family(
            "runnel_log_size_bytes",
            "gauge",
            "Bytes on disk per partition.",
            size,
        );
        if let Some(node) = &broker.cluster {
            out.push_str(&node.render_metrics());
        }
        out
    }
}

/// A label value as Prometheus' text format needs it (user names and client ids come from clients).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
