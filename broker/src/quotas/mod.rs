//! Client quotas as Kafka enforces them (KIP-13, KIP-124, KIP-219): produce bytes, fetch bytes and request
//! time are recorded per quota entity; a client over its quota gets `throttle_time_ms` in its response and
//! its connection is muted for that long (the connection waits before reading its next request), so even a
//! client that ignores the field is held to the rate.

pub mod rate;
pub mod store;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rate::{SampledRate, Windows};
use store::{Entity, QuotaStore};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    Produce,
    Fetch,
    Request,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
            QuotaKind::Request => "request_percentage",
        }
    }
}

/// Entities tracked before idle ones are dropped.
const MAX_TRACKED: usize = 10_000;

pub struct QuotaManager {
    pub store: QuotaStore,
    windows: Windows,
    usage: Mutex<HashMap<(QuotaKind, Entity), SampledRate>>,
}

impl QuotaManager {
    pub fn new(store: QuotaStore, windows: Windows) -> Self {
        QuotaManager {
            store,
            windows,
            usage: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any quota is configured (without one, nothing is measured).
    pub fn any(&self) -> bool {
        !self.store.is_empty()
    }

    /// Records `amount` (bytes, or request time in ms for [`QuotaKind::Request`]) against the entity whose
    /// quota applies, and returns how long the client must be throttled (zero without a quota).
    pub fn record(&self, kind: QuotaKind, user: &str, client_id: &str, amount: f64) -> Duration {
        if !self.any() {
            return Duration::ZERO;
        }
        let Some((entity, quota)) = self.store.resolve(user, client_id, kind.key()) else {
            return Duration::ZERO;
        };
        // request_percentage is a percentage of one thread's time: 100 means 1000 ms per second.
        let quota = match kind {
            QuotaKind::Request => quota * 10.0,
            _ => quota,
        };
        let now = Instant::now();
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        // Many short-lived client ids under a default quota must not grow this forever: forget the idle.
        if usage.len() >= MAX_TRACKED {
            usage.retain(|_, r| r.rate(now) > 0.0);
        }
        let rate = usage
            .entry((kind, entity))
            .or_insert_with(|| SampledRate::new(self.windows, now));
        rate.record(amount, now);
        rate.throttle(quota, now)
    }
}
